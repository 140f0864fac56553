/// The value stored in the shared tier (L2) for one entry: the entry's clear metadata (times,
/// lifetimes, tag digests) followed by the sealed record, byte for byte as L1 holds it, so an L2
/// hit is promoted to L1 without re-sealing and opens under the same binding.
///
/// Layout: `0x01 | responseTime f64 | freshness f64 | initialAge f64 | swr f64 | sie f64 | keep f64 |
/// flags u8 | tagCount u16 | tagDigest 32 * n | sealed`. Doubles are IEEE-754 bit patterns, big-endian;
/// flags: bit 0 a validator is present, bit 1 the response was explicitly public.
///
/// Redis is outside the node's trust: a decoded value is checked to be in range (a freshness of
/// 1e300 or a negative keep time is malformed), so nothing read here can overflow arithmetic later.
public enum L2EntryCodec {
    static let formatByte: UInt8 = 1
    static let varyMarkerByte: UInt8 = 2

    /// What an L2 value holds.
    public enum Value: Sendable {
        case entry(CacheEntry)
        /// The responses for this key vary on these (lower-cased) request headers.
        case varyMarker([String])
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
        return decode(bytes).map(Value.entry) ?? .malformed
    }

    public static func encode(_ entry: CacheEntry) -> [UInt8] {
        var out: [UInt8] = [formatByte]
        out.reserveCapacity(52 + entry.tagDigests.count * 32 + entry.sealed.count)
        let life = entry.lifetime
        for value in [entry.responseTime, life.freshness, life.initialAge, life.staleWhileRevalidate, life.staleIfError, life.keep] {
            let bits = value.bitPattern
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((bits >> UInt64(shift)) & 0xFF)) }
        }
        out.append((life.hasValidator ? 1 : 0) | (life.explicitlyPublic ? 2 : 0))
        out.append(UInt8(entry.tagDigests.count >> 8)); out.append(UInt8(entry.tagDigests.count & 0xFF))
        for tag in entry.tagDigests { out.append(contentsOf: tag.bytes) }
        out.append(contentsOf: entry.sealed)
        return out
    }

    /// Nil for anything malformed; a value that decodes can still fail to open, which is checked by the caller.
    public static func decode(_ bytes: [UInt8]) -> CacheEntry? {
        guard bytes.count >= 52, bytes[0] == formatByte else { return nil }
        var doubles: [Double] = []
        for index in 0..<6 {
            var bits: UInt64 = 0
            for byte in bytes[(1 + index * 8)..<(9 + index * 8)] { bits = bits << 8 | UInt64(byte) }
            doubles.append(Double(bitPattern: bits))
        }
        // A response time within the HTTP date range; lifetimes from 0 to twice the longest a response
        // can state (freshness plus a stale window), the same bounds `StoragePolicy` produces.
        guard doubles.allSatisfy(\.isFinite), (0...HTTPDate.latest).contains(doubles[0]),
              doubles.dropFirst().allSatisfy({ (0...(2 * StoragePolicy.longestLifetime)).contains($0) }),
              bytes[49] & ~3 == 0 else { return nil }
        let hasValidator = bytes[49] & 1 == 1
        let tagCount = Int(bytes[50]) << 8 | Int(bytes[51])
        let sealedStart = 52 + tagCount * 32
        guard bytes.count >= sealedStart else { return nil }
        let tags = (0..<tagCount).map { KeyDigest(bytes: bytes[(52 + $0 * 32)..<(84 + $0 * 32)]) }
        let lifetime = StoragePolicy.Lifetime(freshness: doubles[1], initialAge: doubles[2], staleWhileRevalidate: doubles[3],
                                              staleIfError: doubles[4], hasValidator: hasValidator, keep: doubles[5],
                                              explicitlyPublic: bytes[49] & 2 == 2)
        return CacheEntry(sealed: Array(bytes[sealedStart...]), responseTime: doubles[0], lifetime: lifetime, tagDigests: tags)
    }
}
