/// A request head as `RequestHeadParser` read it: where its parts are in the bytes, and what the
/// connection needs to read the body. The fields themselves go to the parser's caller one by one.
package struct RequestHeadLayout: Equatable, Sendable {
    package var method: RequestMethod
    /// The request target's bytes, as offsets into what the parser was given.
    package var target: Range<Int>
    /// 0 or 1: only HTTP/1.0 and HTTP/1.1 are accepted.
    package var minorVersion: Int
    package var framing: BodyFraming
}

/// How a request's body is delimited (RFC 9112 6.3).
package enum BodyFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
}
