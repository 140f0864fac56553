/// The methods served: RFC 9110's and PATCH (RFC 5789). CONNECT is recognised to be refused with
/// 405; any other token is refused with 501, so no method reaches a responder unnamed.
package enum RequestMethod: Sendable {
    case get, head, post, put, delete, options, patch, trace, connect

    /// Methods are case-sensitive (RFC 9110 9.1): `get` is not GET.
    init?(bytes: UnsafeRawBufferPointer) {
        func named(_ text: StaticString) -> Bool {
            bytes.count == text.utf8CodeUnitCount && RequestHeadParser.matches(text, bytes, at: 0)
        }
        switch bytes.count {
        case 3 where named("GET"): self = .get
        case 3 where named("PUT"): self = .put
        case 4 where named("HEAD"): self = .head
        case 4 where named("POST"): self = .post
        case 5 where named("PATCH"): self = .patch
        case 5 where named("TRACE"): self = .trace
        case 6 where named("DELETE"): self = .delete
        case 7 where named("OPTIONS"): self = .options
        case 7 where named("CONNECT"): self = .connect
        default: return nil
        }
    }
}
