/// The bytes the request parsers name, and the one ASCII case rule every reader of field names and
/// tokens shares (the parser, `ConnectionOptions`, `String.caseInsensitiveEquals`, the HTTP layer's
/// `RequestFields`): letters fold to lowercase, every other byte is compared as it is
/// (NIO's own comparison clears bit 5 of every byte, which also takes `~` for `^`).
package enum ASCII {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")

    /// `tchar` of RFC 9110 5.6.2, as two 64-bit masks (bytes 0–63 and 64–127).
    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool {
        if byte < 64 { return (0x03ff_6cfa_0000_0000 as UInt64) >> byte & 1 == 1 }
        if byte < 128 { return (0x57ff_ffff_c7ff_fffe as UInt64) >> (byte - 64) & 1 == 1 }
        return false
    }

    /// `byte` with an ASCII capital letter folded to lowercase.
    @inlinable @inline(__always)
    package static func lowercased(_ byte: UInt8) -> UInt8 { byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte }

    /// Two byte runs of the same length, equal but for the case of ASCII letters.
    @inlinable
    package static func equalIgnoringCase(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where lhs[index] != rhs[index] {
            if lowercased(lhs[index]) != lowercased(rhs[index]) { return false }
        }
        return true
    }

    /// Whether `bytes` begin with `prefix`, ASCII letters compared without case.
    @inlinable
    package static func startsIgnoringCase(_ bytes: UnsafeRawBufferPointer, with prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        return equalIgnoringCase(
            UnsafeRawBufferPointer(rebasing: bytes[0..<count]),
            UnsafeRawBufferPointer(start: prefix.utf8Start, count: count))
    }

    /// Whether `bytes` are `name`, ASCII letters compared without case.
    @inlinable @inline(__always)
    package static func equalIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        bytes.count == name.utf8CodeUnitCount && startsIgnoringCase(bytes, with: name)
    }
}
