#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Finds where a request head (or a trailer section) ends in bytes that arrive over several reads,
/// without reading a byte twice: a head trickled one byte a read must not be rescanned from its
/// start each time. Each line's end is found with `memchr` rather than byte by byte (the scan was
/// the parser's largest cost per hit). It refuses a bare LF (one not after a CR) and a head beyond
/// its size limit, so `RequestHeadParser` reads lines that all end in CRLF; a CR inside a line is
/// the parser's to refuse. The bytes it is given must start where the head starts and only grow
/// between calls.
package struct RequestHeadScanner: Sendable {
    package enum Result: Equatable, Sendable {
        /// More bytes are needed.
        case incomplete
        /// The head is `start..<end` (the request line's first byte to the final empty line's LF);
        /// `lines` counts its non-empty lines.
        case complete(start: Int, end: Int, lines: Int)
        case refused(RequestRefusal)
    }

    /// The largest head, counted from the first byte (empty lines before the request line included).
    package let maxHeadBytes: Int
    /// True for a request head (RFC 9112 2.2 lets a server skip empty lines before the request
    /// line); false for a trailer section, which an empty first line ends.
    private let skipsLeadingEmptyLines: Bool
    private var position = 0
    private var start: Int? = nil
    private var lineStart = 0
    private var lines = 0

    package init(maxHeadBytes: Int, skipsLeadingEmptyLines: Bool = true) {
        self.maxHeadBytes = maxHeadBytes
        self.skipsLeadingEmptyLines = skipsLeadingEmptyLines
    }

    /// Ready for the next head, whose bytes start at offset 0 again.
    package mutating func reset() {
        position = 0
        start = nil
        lineStart = 0
        lines = 0
    }

    package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Result {
        let count = bytes.count
        var index = position
        if start == nil {
            while skipsLeadingEmptyLines, index < count, bytes[index] == ASCII.cr || bytes[index] == ASCII.lf {
                guard bytes[index] == ASCII.cr else { return .refused(.init(.bareLineFeed)) }
                guard index + 1 < count else { break }  // the LF is still to come
                guard bytes[index + 1] == ASCII.lf else { return .refused(.init(.bareCarriageReturn)) }
                index += 2
                if index > maxHeadBytes { return .refused(.init(.headTooLarge)) }
            }
            guard index < count, !(skipsLeadingEmptyLines && bytes[index] == ASCII.cr) else {
                position = index
                return .incomplete
            }
            start = index
            lineStart = index
        }
        // A head may end with its last LF at offset `maxHeadBytes` at most.
        let window = min(count, maxHeadBytes + 1)
        while let lineFeed = Self.lineFeed(in: bytes, from: index, to: window) {
            guard lineFeed > lineStart, bytes[lineFeed - 1] == ASCII.cr else { return .refused(.init(.bareLineFeed)) }
            if lineFeed - 1 == lineStart, let start {
                let found = Result.complete(start: start, end: lineFeed + 1, lines: lines)
                reset()
                return found
            }
            lines += 1
            lineStart = lineFeed + 1
            index = lineFeed + 1
        }
        if count > maxHeadBytes { return .refused(.init(lines == 0 ? .targetTooLong : .headTooLarge)) }
        position = count
        return .incomplete
    }

    /// The offset of the first LF in `from..<to`.
    @inline(__always)
    private static func lineFeed(in bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard from < to, let base = bytes.baseAddress, let found = memchr(base + from, Int32(ASCII.lf), to - from)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}
