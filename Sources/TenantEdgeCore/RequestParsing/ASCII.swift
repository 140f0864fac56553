/// The bytes the request parsers name.
enum ASCII {
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
}
