import NIOCore

/// A response head laid into the buffer room reserved for it, piece by piece with `memcpy`. The
/// writer sizes the room for the longest head its parts can make; a piece past the end would be a
/// wrong bound, and traps rather than write outside the room.
struct HeadBytes {
    private let room: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ room: UnsafeMutableRawBufferPointer) { self.room = room }

    /// A literal piece (a field name, punctuation).
    @inline(__always)
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// A string's UTF-8 (a value the response carries).
    @inline(__always)
    mutating func append(string: String) {
        var string = string
        string.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// A buffer's readable bytes (a stored header block, the listener's fixed fields).
    @inline(__always)
    mutating func append(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { append($0) }
    }

    /// A non-negative integer in decimal (a negative one as 0), without making a string of it.
    @inline(__always)
    mutating func append(decimal value: Int) {
        var rest = UInt(max(value, 0))
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt.max has 20 digits
        withUnsafeMutableBytes(of: &digits) { raw in
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            append(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }

    /// Raw bytes: every other piece comes through here, and the bound is checked here.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= room.count - count, "HeadBytes: a response head longer than its bound")
        guard let source = bytes.baseAddress, let target = room.baseAddress, !bytes.isEmpty else { return }
        (target + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }
}
