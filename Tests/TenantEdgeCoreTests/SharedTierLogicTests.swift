import Testing

@testable import TenantEdgeCore

@Suite("Shared-tier logic: breaker, L2 value codec, Redis URLs")
struct SharedTierLogicTests {
    @Test func breakerOpensAfterThresholdProbesOnceAndBacksOff() {
        var breaker = CircuitBreaker(failureThreshold: 2, initialBackoff: 1, maxBackoff: 4)
        #expect(breaker.beforeCall(now: 0) == .attempt)
        breaker.failed(now: 0)
        #expect(breaker.isUp)
        breaker.failed(now: 0)
        #expect(breaker.state == .open(until: 1))
        #expect(breaker.beforeCall(now: 0.5) == .failFast)
        #expect(breaker.beforeCall(now: 1) == .attempt, "the probe")
        #expect(breaker.beforeCall(now: 1) == .failFast, "only one probe at a time")
        breaker.failed(now: 1)
        #expect(breaker.state == .open(until: 3), "backoff doubled")
        _ = breaker.beforeCall(now: 3)
        breaker.failed(now: 3)
        _ = breaker.beforeCall(now: 7)
        breaker.failed(now: 7)
        #expect(breaker.state == .open(until: 11), "capped at maxBackoff")
        _ = breaker.beforeCall(now: 11)
        breaker.succeeded()
        #expect(breaker.isUp)
        breaker.failed(now: 12)
        #expect(breaker.isUp, "failures count again from zero")
    }

    @Test func l2ValuesRoundTripAndRejectGarbage() throws {
        let lifetime = StoragePolicy.Lifetime(
            freshness: 60, initialAge: 2, staleWhileRevalidate: 5, staleIfError: 7,
            hasValidator: true, keep: 120)
        let entry = CacheEntry(
            sealed: [1, 2, 3, 4], responseTime: 1_700_000_000.5, lifetime: lifetime,
            tagDigests: [KeyDigest(w0: 1, w1: 2, w2: 3, w3: 4)])
        let decoded = try #require(L2EntryCodec.decode(L2EntryCodec.encode(entry)))
        #expect(decoded.sealed == entry.sealed)
        #expect(decoded.responseTime == entry.responseTime)
        #expect(decoded.lifetime == entry.lifetime)
        #expect(decoded.tagDigests == entry.tagDigests)
        #expect(L2EntryCodec.decode([]) == nil)
        #expect(L2EntryCodec.decode([UInt8](repeating: 1, count: 60)) == nil, "a tag count past the end")
        var truncated = L2EntryCodec.encode(entry)
        truncated.removeLast(40)
        #expect(L2EntryCodec.decode(truncated) == nil)
    }

    /// An L2 value's sealed part is opened where it was read (not copied out), and stays whole when
    /// the entry is promoted into L1's slabs, copied out, or made from an offset out of range.
    @Test func anL2ValuesSealedPartIsReadInPlaceAndPromotedWhole() throws {
        let lifetime = StoragePolicy.Lifetime(
            freshness: 60, initialAge: 0, staleWhileRevalidate: 0, staleIfError: 0, hasValidator: false, keep: 60)
        let sealed = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let value = L2EntryCodec.encode(
            CacheEntry(
                sealed: sealed, responseTime: 1_700_000_000, lifetime: lifetime,
                tagDigests: [KeyDigest(w0: 9, w1: 8, w2: 7, w3: 6)], generation: 3))
        let decoded = try #require(L2EntryCodec.decode(value))
        guard case .tail(let whole, let start) = decoded.sealedBytes.storage else {
            Issue.record("the sealed part was copied out of the value")
            return
        }
        #expect(whole.count == value.count && Int(start) == value.count - sealed.count)
        #expect(decoded.sealedCount == sealed.count)
        #expect(decoded.sealedBytes.withBytes { Array($0) } == sealed)
        #expect(decoded.sealed == sealed && decoded.detached.sealed == sealed)

        var partition = TenantPartition(quotaBytes: 1 << 20)
        let key = KeyDigest(w0: 1, w1: 1, w2: 1, w3: 1)
        let inserted = partition.insert(decoded, primary: key, storageKey: key, varyNames: [], prefixDigests: [])
        #expect(inserted)
        let found = partition.entry(storageKey: key)
        let stored = try #require(found)
        #expect(stored.sealedBytes.slab != nil, "promoted into the partition's slab")
        #expect(stored.sealed == sealed)

        #expect(SealedBytes(tailOf: value, from: value.count).count == 0)
        #expect(SealedBytes(tailOf: value, from: value.count + 5).count == 0, "out of range: empty, no trap")
        #expect(SealedBytes(tailOf: value, from: -1).count == 0, "no header byte passes for sealed")
    }

    /// The codec reads its six times into a tuple now: each of them, set to NaN, an infinity, a
    /// negative or a value past its bound, still refuses the value.
    @Test func everyTimeInAnL2HeaderIsBoundedWhereverItIsBad() throws {
        let lifetime = StoragePolicy.Lifetime(
            freshness: 60, initialAge: 2, staleWhileRevalidate: 5, staleIfError: 7, hasValidator: true, keep: 120)
        let value = L2EntryCodec.encode(
            CacheEntry(sealed: [1, 2, 3], responseTime: 1_700_000_000, lifetime: lifetime, generation: 5))
        let decoded = try #require(L2EntryCodec.decode(value))
        #expect(decoded.generation == 5 && decoded.responseTime == 1_700_000_000 && decoded.lifetime == lifetime)
        for index in 0..<6 {
            // (4 × the longest lifetime is a valid response time, so it is bad only for the others.)
            let past = index == 0 ? 1e300 : 4 * StoragePolicy.longestLifetime
            for bad in [Double.nan, .infinity, -.infinity, -1, past, 1e300] {
                var changed = value
                let bits = bad.bitPattern
                for byte in 0..<8 { changed[9 + index * 8 + byte] = UInt8(truncatingIfNeeded: bits >> (56 - 8 * byte)) }
                #expect(L2EntryCodec.decode(changed) == nil, "time \(index) as \(bad)")
            }
        }
    }

    /// Digests read from contiguous bytes (four words at once) and from any other collection agree.
    @Test func aDigestIsTheSameFromAnyCollectionOfItsBytes() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<100 {
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let padded = [0xAA] + bytes + [0xBB]
            let fromArray = KeyDigest(bytes: bytes)
            #expect(fromArray.bytes == bytes)
            #expect(KeyDigest(bytes: padded[1..<33]) == fromArray, "a slice at an offset")
            #expect(KeyDigest(bytes: bytes.lazy.map { $0 }) == fromArray, "a collection with no contiguous storage")
        }
    }

    /// Eight bytes at a time, then the rest: a difference at any position of any length is seen.
    @Test func sameUTF8SeesADifferenceAnywhere() {
        for length in 0...40 {
            let text = String(repeating: "a", count: length)
            #expect(text.hasSameUTF8(as: String(repeating: "a", count: length)))
            #expect(!text.hasSameUTF8(as: text + "a"))
            for position in 0..<length {
                var bytes = Array(text.utf8)
                bytes[position] = UInt8(ascii: "b")
                #expect(
                    !text.hasSameUTF8(as: String(decoding: bytes, as: UTF8.self)), "length \(length) at \(position)")
            }
        }
        #expect(!"é".hasSameUTF8(as: "e\u{301}"), "canonically equal, different bytes")
    }

    @Test func varyMarkersAndEntriesAreToldApart() {
        guard
            case .varyMarker(let names) = L2EntryCodec.decodeValue(
                L2EntryCodec.encodeVaryMarker(["accept", "accept-language"]))
        else {
            Issue.record("marker not recognised")
            return
        }
        #expect(names == ["accept", "accept-language"])
        guard case .malformed = L2EntryCodec.decodeValue([2]) else {
            Issue.record("an empty marker must be malformed")
            return
        }
        guard case .malformed = L2EntryCodec.decodeValue([9, 9, 9]) else {
            Issue.record("garbage must be malformed")
            return
        }
    }

    @Test func redisURLsParseAndMaskTheirPassword() throws {
        let full = try #require(RedisEndpoint(parsing: "redis://edge:s3cret@10.0.0.5:6380/3"))
        #expect(full.host == "10.0.0.5" && full.port == 6380 && full.database == 3)
        #expect(full.user == "edge" && full.password == "s3cret")
        #expect(!full.description.contains("s3cret"))
        let plain = try #require(RedisEndpoint(parsing: "redis://127.0.0.1"))
        #expect(plain.port == 6379 && plain.database == 0 && plain.password == nil)
        for bad in ["http://x", "redis://", "redis://h:0", "redis://h:6379/x"] {
            #expect(RedisEndpoint(parsing: bad) == nil, "\(bad)")
        }
    }
}

@Suite("Hex")
struct HexTests {
    @Test func encodesLowercaseAndDecodesEitherCase() {
        #expect(Hex.encode([0x00, 0xAB, 0x7F]) == "00ab7f")
        #expect(Hex.decode("00AB7f") == [0x00, 0xAB, 0x7F])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }
}
