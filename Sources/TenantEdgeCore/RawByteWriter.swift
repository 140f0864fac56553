/// Writes fixed-size values into a buffer the caller sized exactly (a stack buffer, usually), so
/// the hit path can build an entry's associated data without allocating an array for it. Writing
/// past the end is a programming error and traps.
public struct RawByteWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    public private(set) var count = 0

    public init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    @inline(__always)
    private mutating func reserve(_ size: Int) -> Int {
        precondition(size <= buffer.count - count, "RawByteWriter: buffer too small")
        defer { count += size }
        return count
    }

    @inline(__always)
    public mutating func write(_ byte: UInt8) { buffer[reserve(1)] = byte }

    @inline(__always)
    public mutating func write(bigEndian value: UInt64) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: reserve(8), as: UInt64.self)
    }

    @inline(__always)
    public mutating func write(littleEndian value: UInt64) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: reserve(8), as: UInt64.self)
    }

    public mutating func write(_ bytes: [UInt8]) {
        let start = reserve(bytes.count)
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[start...]).copyMemory(from: $0) }
    }
}
