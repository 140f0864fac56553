/// The chunked transfer coding of a request body (RFC 9112 7.1), as a state machine over the bytes
/// not yet consumed: each step says how many of them are body data, how many are framing to drop,
/// or where the trailer section ends. Strict, like the head parser: hexadecimal sizes of at most 15
/// digits, CRLF only, chunk extensions as `;name` or `;name=value` with tokens and nothing else
/// (no whitespace, no quoted strings), and a size line of at most `maxSizeLineBytes`.
package struct ChunkedBodyReader: Sendable {
    package enum Step: Equatable, Sendable {
        /// Nothing can be consumed until more bytes arrive.
        case needMore
        /// The first `n` bytes are body data.
        case data(Int)
        /// The first `n` bytes are framing: consume and drop them.
        case framing(Int)
        /// The body ended: its trailer section is `0..<end` (just CRLF when there is none) with
        /// `lines` field lines; `RequestHeadParser.parseFields` reads them.
        case end(end: Int, lines: Int)
    }

    private enum State: Sendable {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    /// A chunk-size line longer than this (extensions included) is refused.
    package static let maxSizeLineBytes = 1024
    /// 15 hexadecimal digits cannot overflow an `Int`.
    static let maxSizeDigits = 15
    /// Chunk extensions of one body, in bytes: the body limit counts data only, so a client could
    /// otherwise send a kilobyte of framing per byte of body.
    package static let maxExtensionBytes = 4096

    private var state = State.size
    private var trailerScanner: RequestHeadScanner
    /// Where the search for the size line's LF resumes.
    private var sizeLineScanned = 0
    private var extensionBytes = 0

    /// `maxTrailerBytes` bounds the trailer section as `limits.max_header_bytes` bounds a head.
    package init(maxTrailerBytes: Int) {
        trailerScanner = RequestHeadScanner(maxHeadBytes: maxTrailerBytes, skipsLeadingEmptyLines: false)
    }

    /// The next step over `bytes`, which start at the first byte not consumed yet.
    package mutating func next(_ bytes: UnsafeRawBufferPointer) -> Result<Step, RequestRefusal> {
        switch state {
        case .size:
            return sizeLine(bytes)
        case .data(let remaining):
            guard !bytes.isEmpty else { return .success(.needMore) }
            let count = min(remaining, bytes.count)
            state = count == remaining ? .dataEnd : .data(remaining: remaining - count)
            return .success(.data(count))
        case .dataEnd:
            guard bytes.count >= 2 else {
                if let first = bytes.first, first != ASCII.cr { return refused }
                return .success(.needMore)  // the CR, or nothing yet
            }
            guard bytes[0] == ASCII.cr, bytes[1] == ASCII.lf else { return refused }
            state = .size
            return .success(.framing(2))
        case .trailers:
            switch trailerScanner.scan(bytes) {
            case .incomplete: return .success(.needMore)
            case .refused(let refusal): return .failure(refusal)
            case .complete(_, let end, let lines):
                state = .size
                return .success(.end(end: end, lines: lines))
            }
        }
    }

    private var refused: Result<Step, RequestRefusal> { .failure(.init(.malformedChunk)) }

    private mutating func sizeLine(_ bytes: UnsafeRawBufferPointer) -> Result<Step, RequestRefusal> {
        var lineFeed: Int? = nil
        var index = sizeLineScanned
        while index < bytes.count {
            if bytes[index] == ASCII.lf {
                lineFeed = index
                break
            }
            index += 1
        }
        guard let lineFeed else {
            sizeLineScanned = index
            return bytes.count > Self.maxSizeLineBytes ? refused : .success(.needMore)
        }
        sizeLineScanned = 0
        guard lineFeed >= 2, lineFeed <= Self.maxSizeLineBytes, bytes[lineFeed - 1] == ASCII.cr else { return refused }
        let lineEnd = lineFeed - 1  // the CR
        var size = 0
        var digits = 0
        while digits < lineEnd, let digit = Self.hexValue(bytes[digits]) {
            guard digits < Self.maxSizeDigits else { return refused }
            size = size << 4 | digit
            digits += 1
        }
        guard digits > 0, Self.isExtensionList(bytes, from: digits, to: lineEnd) else { return refused }
        extensionBytes += lineEnd - digits
        guard extensionBytes <= Self.maxExtensionBytes else { return refused }
        state = size == 0 ? .trailers : .data(remaining: size)
        return .success(.framing(lineFeed + 1))
    }

    /// `*( ";" token [ "=" token ] )` from `start` to `end`.
    private static func isExtensionList(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        var index = start
        while index < end {
            guard bytes[index] == UInt8(ascii: ";") else { return false }
            index += 1
            let name = index
            while index < end, ASCII.isToken(bytes[index]) { index += 1 }
            guard index > name else { return false }
            if index < end, bytes[index] == UInt8(ascii: "=") {
                index += 1
                let value = index
                while index < end, ASCII.isToken(bytes[index]) { index += 1 }
                guard index > value else { return false }
            }
        }
        return true
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}
