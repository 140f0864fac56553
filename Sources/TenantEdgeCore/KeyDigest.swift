/// A 32-byte keyed digest (HMAC-SHA256 under a tenant-derived key) of a cache key, tag or prefix.
/// The cache indexes only these, so no URL, tag or prefix is held in clear in any tier.
public struct KeyDigest: Hashable, Sendable {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    /// Builds a digest from exactly 32 bytes. Contiguous bytes (an array or a slice of one: the tags
    /// of an L2 value) are read as four words; an array of words per digest cost an L2 hit an
    /// allocation and 500 instructions for each tag.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 32, "a KeyDigest is 32 bytes")
        if let digest = bytes.withContiguousStorageIfAvailable({ Self(littleEndianWords: UnsafeRawBufferPointer($0)) })
        {
            self = digest
            return
        }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, byte) in bytes.enumerated() {
            let shifted = UInt64(byte) << (8 * UInt64(index % 8))
            switch index / 8 {
            case 0: words.0 |= shifted
            case 1: words.1 |= shifted
            case 2: words.2 |= shifted
            default: words.3 |= shifted
            }
        }
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    /// 32 bytes as four little-endian words (`append(to:)`'s layout).
    private init(littleEndianWords raw: UnsafeRawBufferPointer) {
        func word(_ at: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        self.init(w0: word(0), w1: word(8), w2: word(16), w3: word(24))
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        append(to: &out)
        return out
    }

    /// Appends the 32 bytes to `out` (the hit path builds associated data with no array of its own).
    public func append(to out: inout [UInt8]) {
        Self.appendWord(w0, to: &out)
        Self.appendWord(w1, to: &out)
        Self.appendWord(w2, to: &out)
        Self.appendWord(w3, to: &out)
    }

    /// The 32 bytes, as `append(to:)` lays them out.
    public func write(to out: inout RawByteWriter) {
        out.write(littleEndian: w0)
        out.write(littleEndian: w1)
        out.write(littleEndian: w2)
        out.write(littleEndian: w3)
    }

    private static func appendWord(_ word: UInt64, to out: inout [UInt8]) {
        withUnsafeBytes(of: word.littleEndian) { out.append(contentsOf: $0) }
    }

    /// Unpadded base64url, as in the namespaced storage key (`EntryBinding.storageKey`).
    public var base64URL: String {
        String(unsafeUninitializedCapacity: 43) { out in writeBase64URL(into: out) }
    }

    /// Appends the 43 characters of `base64URL` to `bytes`, making no `String` (a Redis key is
    /// built as bytes on the L2 read path).
    public func appendBase64URL(to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 43))
        bytes.withUnsafeMutableBufferPointer { buffer in
            _ = writeBase64URL(into: UnsafeMutableBufferPointer(rebasing: buffer[start...]))
        }
    }

    /// Writes the 43 characters into `out` (at least 43 long); returns how many.
    private func writeBase64URL(into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        // 32 bytes are ten groups of three and two left over: 43 characters, written in place.
        let words = (w0.littleEndian, w1.littleEndian, w2.littleEndian, w3.littleEndian)
        return withUnsafeBytes(of: words) { input in
            var written = 0
            var index = 0
            while index < 32 {
                let count = Swift.min(3, 32 - index)
                var value = 0
                for offset in 0..<count { value |= Int(input[index + offset]) << (16 - 8 * offset) }
                for position in 0...count {
                    out[written] = Self.base64URLCharacter(UInt8(truncatingIfNeeded: value >> (18 - 6 * position)))
                    written += 1
                }
                index += 3
            }
            return written
        }
    }

    /// The base64url character for the low six bits of `sextet`.
    private static func base64URLCharacter(_ sextet: UInt8) -> UInt8 {
        let value = sextet & 0x3F
        switch value {
        case 0..<26: return UInt8(ascii: "A") + value
        case 26..<52: return UInt8(ascii: "a") + (value - 26)
        case 52..<62: return UInt8(ascii: "0") + (value - 52)
        case 62: return UInt8(ascii: "-")
        default: return UInt8(ascii: "_")
        }
    }
}
