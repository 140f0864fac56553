/// A request head as `RequestHeadParser` read it: where its parts are in the bytes, and what the
/// connection needs to read the body. The fields themselves go to the parser's caller one by one.
package struct RequestHeadLayout: Equatable, Sendable {
    package var method: RequestMethod
    /// The request target's bytes, as offsets into what the parser was given.
    package var target: Range<Int>
    /// 0 or 1: only HTTP/1.0 and HTTP/1.1 are accepted.
    package var minorVersion: Int
    package var framing: BodyFraming
    package var fieldCount: Int
}

/// How a request's body is delimited (RFC 9112 6.3).
package enum BodyFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
}

/// The methods served: RFC 9110's and PATCH (RFC 5789). CONNECT is recognised to be refused with
/// 405; any other token is refused with 501, so no method reaches a responder unnamed.
package enum RequestMethod: Sendable, CaseIterable {
    case get, head, post, put, delete, options, patch, trace, connect

    /// Methods are case-sensitive (RFC 9110 9.1): `get` is not GET.
    init?(bytes: UnsafeRawBufferPointer) {
        @inline(__always) func equals(_ text: StaticString) -> Bool {
            guard text.utf8CodeUnitCount == bytes.count else { return false }
            let pointer = text.utf8Start
            for offset in 0..<bytes.count where pointer[offset] != bytes[offset] { return false }
            return true
        }
        switch bytes.count {
        case 3: self.init(matching: equals("GET") ? .get : equals("PUT") ? .put : nil)
        case 4: self.init(matching: equals("HEAD") ? .head : equals("POST") ? .post : nil)
        case 5: self.init(matching: equals("PATCH") ? .patch : equals("TRACE") ? .trace : nil)
        case 6: self.init(matching: equals("DELETE") ? .delete : nil)
        case 7: self.init(matching: equals("OPTIONS") ? .options : equals("CONNECT") ? .connect : nil)
        default: return nil
        }
    }

    private init?(matching method: RequestMethod?) {
        guard let method else { return nil }
        self = method
    }
}
