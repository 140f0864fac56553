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

    /// Builds a digest from exactly 32 bytes.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 32, "a KeyDigest is 32 bytes")
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in bytes.enumerated() { words[index / 8] |= UInt64(byte) << (8 * UInt64(index % 8)) }
        self.init(w0: words[0], w1: words[1], w2: words[2], w3: words[3])
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
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        let input = bytes
        var out: [UInt8] = []
        var index = 0
        while index < input.count {
            let chunk = input[index..<min(index + 3, input.count)]
            var value = 0
            for (offset, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * offset) }
            for position in 0..<(chunk.count + 1) { out.append(alphabet[(value >> (18 - 6 * position)) & 0x3F]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
