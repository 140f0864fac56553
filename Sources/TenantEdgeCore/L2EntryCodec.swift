/// The value stored in the shared tier (L2) for one entry: the entry's metadata header (generation,
/// times, lifetimes, flags, tag digests) followed by the sealed record, byte for byte as L1 holds
/// it, so an L2 hit is promoted to L1 without re-sealing and opens under the same binding.
///
/// Header: `0x03 | generation u64 | responseTime f64 | freshness f64 | initialAge f64 | swr f64 |
/// sie f64 | keep f64 | flags u8 | tagCount u16 | tagDigest 32 * n`, then `sealed`. Integers and
/// IEEE-754 bit patterns are big-endian; flags: bit 0 a validator is present, bit 1 the response
/// was explicitly public.
///
/// Redis is outside the node's trust. The header is part of the associated data the record is
/// sealed with (`TenantCache.aad(_:for:)`), so a changed lifetime, response time, tag list or
/// generation makes the value fail to open: a miss and a `decrypt_failed` event. A value copied
/// into the next generation's key still names its own generation, which the reader compares with
/// the one it read from. Values out of range (a freshness of 1e300, a negative keep time) are
/// malformed before any arithmetic sees them.
public enum L2EntryCodec {
    static let formatByte: UInt8 = 3
    static let varyMarkerByte: UInt8 = 2
    /// Entries written before the header was authenticated: read as a quiet miss, never trusted.
    static let previousFormatByte: UInt8 = 1
    static let fixedHeaderBytes = 1 + 8 + 6 * 8 + 1 + 2

    /// What an L2 value holds.
    public enum Value: Sendable {
        case entry(CacheEntry)
        /// The responses for this key vary on these (lower-cased) request headers.
        case varyMarker([String])
        /// Written in an earlier format: a miss, rewritten on the next store.
        case outdated
        case malformed
    }

    /// The marker stored at a primary digest whose responses vary: `0x02 | names joined by "\n"`.
    /// It names headers only, never their values (those are inside the variant digests).
    public static func encodeVaryMarker(_ names: [String]) -> [UInt8] {
        [varyMarkerByte] + Array(names.joined(separator: "\n").utf8)
    }

    public static func decodeValue(_ bytes: [UInt8]) -> Value {
        if bytes.first == varyMarkerByte {
            let names = String(decoding: bytes.dropFirst(), as: UTF8.self).split(separator: "\n").map(String.init)
            return names.isEmpty ? .malformed : .varyMarker(names)
        }
        if bytes.first == previousFormatByte { return .outdated }
        return decode(bytes).map(Value.entry) ?? .malformed
    }

    /// The metadata header of `entry`: what L2 stores before the sealed bytes, and what the sealed
    /// bytes are bound to.
    public static func header(of entry: CacheEntry) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerBytes(of: entry))
        appendHeader(of: entry, to: &out)
        return out
    }

    public static func headerBytes(of entry: CacheEntry) -> Int {
        fixedHeaderBytes + min(entry.tagDigests.count, Int(UInt16.max)) * 32
    }

    /// Appends the header to `out`.
    public static func appendHeader(of entry: CacheEntry, to out: inout [UInt8]) {
        let start = out.count
        let count = headerBytes(of: entry)
        out.append(contentsOf: repeatElement(0, count: count))
        out.withUnsafeMutableBytes { bytes in
            var writer = RawByteWriter(UnsafeMutableRawBufferPointer(rebasing: bytes[start..<(start + count)]))
            writeHeader(of: entry, to: &writer)
        }
    }

    /// Writes the header (`headerBytes(of:)` bytes): the hit path builds the associated data on the stack with it.
    public static func writeHeader(of entry: CacheEntry, to out: inout RawByteWriter) {
        out.write(formatByte)
        out.write(bigEndian: entry.generation)
        let life = entry.lifetime
        out.write(bigEndian: entry.responseTime.bitPattern)
        out.write(bigEndian: life.freshness.bitPattern)
        out.write(bigEndian: life.initialAge.bitPattern)
        out.write(bigEndian: life.staleWhileRevalidate.bitPattern)
        out.write(bigEndian: life.staleIfError.bitPattern)
        out.write(bigEndian: life.keep.bitPattern)
        out.write((life.hasValidator ? 1 : 0) | (life.explicitlyPublic ? 2 : 0))
        let tagCount = min(entry.tagDigests.count, Int(UInt16.max))
        out.write(UInt8(truncatingIfNeeded: tagCount >> 8))
        out.write(UInt8(truncatingIfNeeded: tagCount))
        for tag in entry.tagDigests.prefix(tagCount) { tag.write(to: &out) }
    }

    public static func encode(_ entry: CacheEntry) -> [UInt8] {
        var value = header(of: entry)
        value.reserveCapacity(value.count + entry.sealedCount)
        entry.sealedBytes.withBytes { value.append(contentsOf: $0) }
        return value
    }

    /// Nil for anything malformed; a value that decodes can still fail to open, which is checked by the caller.
    public static func decode(_ bytes: [UInt8]) -> CacheEntry? {
        guard bytes.count >= fixedHeaderBytes, bytes[0] == formatByte else { return nil }
        /// The big-endian word at `at` (within the fixed header, whose length is checked above).
        func word(_ at: Int) -> UInt64 {
            var bits: UInt64 = 0
            for byte in bytes[at..<(at + 8)] { bits = bits << 8 | UInt64(byte) }
            return bits
        }
        let generation = word(1)
        // Read into a tuple, not an array: one allocation fewer per L2 read.
        let doubles = (
            Double(bitPattern: word(9)), Double(bitPattern: word(17)), Double(bitPattern: word(25)),
            Double(bitPattern: word(33)), Double(bitPattern: word(41)), Double(bitPattern: word(49))
        )
        let flags = bytes[57]
        // A response time within the HTTP date range; lifetimes from 0 to twice the longest a response
        // can state (freshness plus a stale window), the same bounds `StoragePolicy` produces. (The
        // ranges are closed and finite, so NaN and infinities fall outside them.)
        let lifetimeRange = 0...(2 * StoragePolicy.longestLifetime)
        guard (0...HTTPDate.latest).contains(doubles.0), lifetimeRange.contains(doubles.1),
            lifetimeRange.contains(doubles.2), lifetimeRange.contains(doubles.3), lifetimeRange.contains(doubles.4),
            lifetimeRange.contains(doubles.5), flags & ~3 == 0
        else { return nil }
        let tagCount = Int(bytes[58]) << 8 | Int(bytes[59])
        let sealedStart = fixedHeaderBytes + tagCount * 32
        guard bytes.count >= sealedStart else { return nil }
        let tags = (0..<tagCount).map {
            KeyDigest(bytes: bytes[(fixedHeaderBytes + $0 * 32)..<(fixedHeaderBytes + 32 + $0 * 32)])
        }
        let lifetime = StoragePolicy.Lifetime(
            freshness: doubles.1, initialAge: doubles.2, staleWhileRevalidate: doubles.3,
            staleIfError: doubles.4, hasValidator: flags & 1 == 1, keep: doubles.5,
            explicitlyPublic: flags & 2 == 2)
        var entry = CacheEntry(
            sealed: [], responseTime: doubles.0, lifetime: lifetime, tagDigests: tags, generation: generation)
        entry.sealedBytes = SealedBytes(tailOf: bytes, from: sealedStart)  // opened where it was read
        return entry
    }
}
