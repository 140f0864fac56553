/// A strict RFC 9112 request-head parser that reads the method, target, version and fields straight
/// from the bytes and builds nothing itself: each field goes to the caller as two byte ranges. It
/// refuses rather than repairs, since every leniency is a way for two parsers on one path to read
/// one request differently (request smuggling): only `method SP target SP HTTP/1.x` with single
/// spaces; CRLF line ends only (`RequestHeadScanner` refused a bare LF, this a CR inside a line); no obs-fold;
/// names that are tokens with the colon right after them; values without NUL or other control
/// bytes; `Content-Length` as one decimal number, once, never beside `Transfer-Encoding`;
/// `Transfer-Encoding: chunked` only, once, and never in HTTP/1.0; exactly one `Host` in HTTP/1.1
/// and at most one in HTTP/1.0. The fuzz target `http-request` checks it against NIO's decoder:
/// whatever this accepts, NIO reads as the same request.
package enum RequestHeadParser {
    /// At most this many field lines in a head (Apache's `LimitRequestFields` is 100).
    package static let maxFields = 256
    /// Longest `Content-Length` accepted, in digits: 18 cannot overflow an `Int`.
    static let maxLengthDigits = 18

    /// Parses the complete head `start..<end` that `RequestHeadScanner` found (`lines` as it counted
    /// them). `field` is called with the place in `bytes` of each name and value (optional
    /// whitespace trimmed), in order.
    package static func parse(
        _ bytes: UnsafeRawBufferPointer, start: Int, end: Int, lines: Int,
        field: (Range<Int>, Range<Int>) -> Void
    ) -> Result<RequestHeadLayout, RequestRefusal> {
        guard start >= 0, start < end, end <= bytes.count else { return .failure(.init(.malformedRequestLine)) }
        guard lines - 1 <= maxFields else { return .failure(.init(.tooManyFields)) }
        var index = start
        // method SP
        while index < end, ASCII.isToken(bytes[index]) { index += 1 }
        guard index > start, index < end, bytes[index] == ASCII.space else {
            return .failure(.init(.malformedRequestLine))
        }
        let method = RequestMethod(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        index += 1
        // request-target SP: visible ASCII only
        let targetStart = index
        while index < end, bytes[index] > ASCII.space, bytes[index] < 0x7F { index += 1 }
        guard index > targetStart, index < end, bytes[index] == ASCII.space else {
            return .failure(.init(.malformedRequestLine))
        }
        let target = targetStart..<index
        index += 1
        // HTTP-version CRLF
        guard end - index >= 10, matches("HTTP/", bytes, at: index),
            isDigit(bytes[index + 5]), bytes[index + 6] == UInt8(ascii: "."), isDigit(bytes[index + 7]),
            bytes[index + 8] == ASCII.cr, bytes[index + 9] == ASCII.lf
        else { return .failure(.init(.malformedRequestLine)) }
        let major = Int(bytes[index + 5] - UInt8(ascii: "0"))
        let minor = Int(bytes[index + 7] - UInt8(ascii: "0"))
        guard major == 1, minor <= 1 else { return .failure(.init(.unsupportedVersion)) }
        index += 10
        guard let method else { return .failure(.init(.unknownMethod)) }
        guard method != .connect else { return .failure(.init(.connectNotServed)) }
        guard isAcceptedTarget(UnsafeRawBufferPointer(rebasing: bytes[target]), method: method) else {
            return .failure(.init(.invalidTarget))
        }

        var framing = Framing()
        var hosts = 0
        let fields = parseFields(bytes, from: index, end: end) { nameRange, valueRange, tabAfter in
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameRange])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
            switch name.count {  // the three names that frame a request, told apart by length first
            case 4 where ASCII.equalIgnoringCase(name, "host"):
                hosts += 1
                if hosts > 1 { return .duplicateHost }
            case 14 where ASCII.equalIgnoringCase(name, "content-length"):
                // llhttp takes only spaces after the number (RFC 9110 would take a tab too).
                if tabAfter { return .invalidContentLength }
                if let refusal = framing.contentLength(value) { return refusal }
            case 17 where ASCII.equalIgnoringCase(name, "transfer-encoding"):
                // llhttp reads `chunked` followed by a tab as another coding.
                if tabAfter { return .unsupportedTransferCoding }
                if let refusal = framing.transferEncoding(value) { return refusal }
            default:
                break
            }
            field(nameRange, valueRange)
            return nil
        }
        if case .failure(let refusal) = fields { return .failure(refusal) }
        if framing.chunked, framing.length != nil { return .failure(.init(.lengthWithTransferEncoding)) }
        if framing.chunked, minor == 0 { return .failure(.init(.transferEncodingInHTTP10)) }
        if minor == 1, hosts == 0 { return .failure(.init(.missingHost)) }
        let body: BodyFraming = framing.chunked ? .chunked : framing.length.map { .length($0) } ?? .none
        return .success(RequestHeadLayout(method: method, target: target, minorVersion: minor, framing: body))
    }

    /// Field lines from `index` to the empty line that ends at `end` (a head's or a trailer
    /// section's). `field` may refuse a field by the places of its name and value in `bytes` and
    /// whether a tab was in the whitespace after the value. Returns how many there were.
    package static func parseFields(
        _ bytes: UnsafeRawBufferPointer, from start: Int, end: Int,
        field: (Range<Int>, Range<Int>, Bool) -> RequestRefusal.Reason?
    ) -> Result<Int, RequestRefusal> {
        guard start >= 0, end <= bytes.count, end - start >= 2 else { return .failure(.init(.malformedRequestLine)) }
        var index = start
        var count = 0
        let last = end - 2  // the empty line's CR
        while index < last {
            let lineStart = index
            let first = bytes[index]
            if first == ASCII.space || first == ASCII.tab { return .failure(.init(.obsoleteLineFolding)) }
            // Every CR the scanner saw before an LF ended a line; one opening a line cannot.
            if first == ASCII.cr { return .failure(.init(.bareCarriageReturn)) }
            while index < last, ASCII.isToken(bytes[index]) { index += 1 }
            guard index > lineStart, index < last, bytes[index] == ASCII.colon else {
                return .failure(.init(.invalidFieldName))
            }
            let name = lineStart..<index
            index += 1
            while index < last, bytes[index] == ASCII.space || bytes[index] == ASCII.tab { index += 1 }
            let valueStart = index
            // Up to the first control byte or DEL, eight bytes at a time where none of them is one:
            // a tab is passed, a CR ends the value, anything else is refused.
            while index < last {
                if last - index >= 8, !hasControlByte(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                    index += 8
                    continue
                }
                let byte = bytes[index]
                if byte == ASCII.cr { break }
                if byte == 0x7F || (byte < ASCII.space && byte != ASCII.tab) {
                    return .failure(.init(.invalidFieldValue))
                }
                index += 1
            }
            // Every byte before `index` is visible, past ASCII, a space or a tab: the value ends
            // after its last byte that is none of the latter two.
            var valueEnd = index
            var tabAfter = false
            while valueEnd > valueStart, bytes[valueEnd - 1] == ASCII.space || bytes[valueEnd - 1] == ASCII.tab {
                if bytes[valueEnd - 1] == ASCII.tab { tabAfter = true }
                valueEnd -= 1
            }
            // The value ends at its first CR, which must be the line's end.
            guard index + 1 < end, bytes[index] == ASCII.cr, bytes[index + 1] == ASCII.lf else {
                return .failure(.init(.bareCarriageReturn))
            }
            index += 2
            count += 1
            guard count <= maxFields else { return .failure(.init(.tooManyFields)) }
            if let refusal = field(name, valueStart..<valueEnd, tabAfter) {
                return .failure(.init(refusal))
            }
        }
        guard index == last, bytes[last] == ASCII.cr, bytes[last + 1] == ASCII.lf else {
            return .failure(.init(.bareCarriageReturn))
        }
        return .success(count)
    }

    /// A chunked body's trailer section `0..<end`. The fields that frame or route a request
    /// (`Content-Length`, `Transfer-Encoding`, `Host`) are refused there (RFC 9110 6.5.1), since a
    /// reader that merges trailers into the head would read a second framing.
    package static func parseTrailerFields(
        _ bytes: UnsafeRawBufferPointer, end: Int, field: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
    ) -> Result<Int, RequestRefusal> {
        parseFields(bytes, from: 0, end: end) { nameRange, valueRange, _ in
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameRange])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
            switch name.count {
            case 4 where ASCII.equalIgnoringCase(name, "host"),
                14 where ASCII.equalIgnoringCase(name, "content-length"),
                17 where ASCII.equalIgnoringCase(name, "transfer-encoding"):
                return .framingFieldInTrailers
            default:
                field(name, value)
                return nil
            }
        }
    }

    /// origin-form (`/…`), absolute-form, or `*` for OPTIONS (RFC 9112 3.2). absolute-form only
    /// as `http://` or `https://` and an authority that is a valid `Host` (`HostName`: no userinfo,
    /// which RFC 9110 4.2.4 calls an error, no fragment), since two readers of a looser authority
    /// may route one request to two hosts.
    static func isAcceptedTarget(_ target: UnsafeRawBufferPointer, method: RequestMethod) -> Bool {
        guard let first = target.first else { return false }
        if first == UInt8(ascii: "/") { return true }
        if first == UInt8(ascii: "*") { return target.count == 1 && method == .options }
        let authority =
            ASCII.startsIgnoringCase(target, with: "http://")
            ? 7 : ASCII.startsIgnoringCase(target, with: "https://") ? 8 : target.count
        var index = authority
        while index < target.count, target[index] != UInt8(ascii: "/"), target[index] != UInt8(ascii: "?") {
            index += 1
        }
        return index > authority && HostName.isValid(bytes: UnsafeRawBufferPointer(rebasing: target[authority..<index]))
    }

    /// Whether any of the eight bytes in `word` is below 0x20 or is DEL (0x7F): Bit Twiddling Hacks'
    /// `hasless` (a byte below n leaves its high bit set in `(x - n per byte) & ~x`; exact as a
    /// yes-or-no, and bytes past ASCII never count), for n = 0x20 on the word and n = 1 on the word
    /// XOR DEL in every byte.
    @inline(__always) static func hasControlByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let delete = word ^ (ones &* 0x7F)
        return ((word &- ones &* 0x20) & ~word | (delete &- ones) & ~delete) & highs != 0
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
    @inline(__always) static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- UInt8(ascii: "a") < 26 }

    static func matches(_ text: StaticString, _ bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        let count = text.utf8CodeUnitCount
        guard index >= 0, bytes.count - index >= count else { return false }
        let pointer = text.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] { return false }
        return true
    }

    /// What `Content-Length` and `Transfer-Encoding` said, checked as each arrives.
    private struct Framing {
        var length: Int? = nil
        var chunked = false
        var codings = 0

        mutating func contentLength(_ value: UnsafeRawBufferPointer) -> RequestRefusal.Reason? {
            guard length == nil else { return .duplicateContentLength }
            guard !value.isEmpty, value.count <= RequestHeadParser.maxLengthDigits else { return .invalidContentLength }
            var total = 0
            for byte in value {
                guard RequestHeadParser.isDigit(byte) else { return .invalidContentLength }
                total = total * 10 + Int(byte - UInt8(ascii: "0"))  // 18 digits cannot overflow
            }
            length = total
            return nil
        }

        mutating func transferEncoding(_ value: UnsafeRawBufferPointer) -> RequestRefusal.Reason? {
            codings += 1
            guard codings == 1, ASCII.equalIgnoringCase(value, "chunked") else {
                return .unsupportedTransferCoding
            }
            chunked = true
            return nil
        }
    }
}
