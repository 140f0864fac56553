/// What a request's `Connection` fields say, read from their bytes without allocating (a value with
/// bytes past ASCII aside): whether they ask to close or keep the connection, and whether they name
/// any other field (hop-by-hop, to be dropped).
///
/// NIO's `isKeepAlive` reads the same fields through `headers[canonicalForm:]`, which builds an
/// array of lower-cased substrings: about 5,700 instructions a call for a request with a
/// `Connection` field, asked twice per request (`make bench-instructions` with `CLOSE=1`), where
/// most clients behind a proxy send one. `verdict` follows NIO's rule exactly: tokens split on
/// commas (on the `Character` comma, as Swift's `split` does, when a value has bytes past ASCII),
/// spaces and tabs trimmed, compared as NIO compares them (each byte with bit 5 cleared); `close`
/// and `keep-alive` together, or either twice, mean close. `ConnectionOptionsTests` holds it to NIO's.
public struct ConnectionOptions: Sendable, Equatable {
    public enum Verdict: Sendable, Equatable {
        /// No `close` or `keep-alive` token: the version's default.
        case unspecified
        case close
        case keepAlive
    }

    public private(set) var verdict = Verdict.unspecified
    /// Some token is neither `close` nor `keep-alive` (ASCII letters compared without case): the
    /// request names a hop-by-hop field the node must not pass on or vary on.
    public private(set) var namesOtherFields = false

    public init() {}

    /// Reads one `Connection` field's value.
    public mutating func read(_ value: String) {
        var value = value
        let ascii = value.withUTF8 { bytes in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return false }
            read(bytes)
            return true
        }
        guard !ascii else { return }
        // NIO and the admission split on the `Character` ",": a comma a combining mark follows is
        // no separator there. Rare (no token has such bytes), so the exact rule costs only here.
        for token in value.split(separator: ",") {
            var token = String(token)
            token.withUTF8 { readToken($0) }
        }
    }

    /// Reads one `Connection` field's value from its bytes; those past ASCII are decoded as UTF-8
    /// (invalid ones replaced) and read as `read(_:)` reads a string.
    public mutating func read(bytes: UnsafeRawBufferPointer) {
        guard bytes.allSatisfy({ $0 < 0x80 }) else {
            read(String(decoding: bytes, as: UTF8.self))
            return
        }
        read(bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Reads one value of ASCII bytes, splitting on the comma byte.
    private mutating func read(_ bytes: UnsafeBufferPointer<UInt8>) {
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
            readToken(UnsafeBufferPointer(rebasing: bytes[start..<end]))
            start = end + 1
        }
    }

    /// Reads one token, spaces and tabs around it trimmed (nothing left: no token).
    private mutating func readToken(_ bytes: UnsafeBufferPointer<UInt8>) {
        var first = 0
        var last = bytes.count
        while first < last, Self.isSpaceOrTab(bytes[first]) { first += 1 }
        while last > first, Self.isSpaceOrTab(bytes[last - 1]) { last -= 1 }
        if first < last { classify(token: UnsafeBufferPointer(rebasing: bytes[first..<last])) }
    }

    /// A verdict, a second one (close), or another field named.
    private mutating func classify(token: UnsafeBufferPointer<UInt8>) {
        let close = Self.nioEquals(token, Self.close)
        let keepAlive = !close && Self.nioEquals(token, Self.keepAlive)
        if close || keepAlive {
            // Two verdicts, even the same twice, are a confused client: close (as NIO does).
            verdict = verdict != .unspecified ? .close : (close ? .close : .keepAlive)
        }
        // ASCII letters without case, every other byte exactly: the stricter test, so a token that
        // only NIO's comparison would take for `close` still counts as naming another field.
        let raw = UnsafeRawBufferPointer(token)
        if !ASCII.equalIgnoringCase(raw, "close") && !ASCII.equalIgnoringCase(raw, "keep-alive") {
            namesOtherFields = true
        }
    }

    /// Whether the connection stays open after the request: the verdict, else HTTP/1.1's default.
    public func keepsConnection(minorVersion: Int) -> Bool {
        switch verdict {
        case .close: false
        case .keepAlive: true
        case .unspecified: minorVersion >= 1
        }
    }

    private static let close = Array("close".utf8)
    private static let keepAlive = Array("keep-alive".utf8)

    private static func isSpaceOrTab(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// NIO's comparison (`compareCaseInsensitiveASCIIBytes`): bit 5 cleared on both sides.
    private static func nioEquals(_ token: UnsafeBufferPointer<UInt8>, _ word: [UInt8]) -> Bool {
        guard token.count == word.count else { return false }
        for index in 0..<word.count where token[index] & 0xDF != word[index] & 0xDF { return false }
        return true
    }
}
