import NIOCore
import NIOHTTP1
import TenantEdgeCore
import TenantEdgeHTTP

/// What the traffic listener accepts before any cache or upstream work: one valid `Host`, a target
/// in origin-form (absolute-form reduced to it), a bounded length, no `CONNECT` or `TRACE`. The
/// request that goes on carries the tenant's canonical `Host` and the normalised target, so the
/// key, the collapse and the upstream all see one form of it.
extension TenantTrafficResponder {
    enum Admission {
        /// For the tenant: the request to serve when it had to change (nil: nothing had to, and the
        /// one given is served as it came, not copied into this enum and out again), and the host
        /// the client named (for redirects).
        case admitted(EdgeRequest?, TenantCache, clientHost: String)
        /// For no tenant: the origin-form target (the sibling-region health probe may ask for it).
        case noTenant(target: String)
        /// Refused before anything else happened.
        case refused(EdgeResponse)
    }

    func admit(_ request: EdgeRequest, in table: TenantTable) -> Admission {
        let limits = runtime.config.limits
        guard request.head.uri.utf8.count <= limits.maxTargetBytes else {
            return .refused(
                .jsonError(
                    .uriTooLong, code: "uri_too_long",
                    detail: "the request target is longer than limits.max_target_bytes"))
        }
        let accepted: RequestTarget.Accepted
        switch RequestTarget.accept(method: request.head.method.rawValue, rawTarget: request.head.uri) {
        case .failure(.methodNotAllowed):
            return .refused(.jsonError(.methodNotAllowed, code: "method_not_allowed", detail: "CONNECT is not served"))
        case .failure(.badTarget(let reason)):
            return .refused(.jsonError(.badRequest, code: "bad_request", detail: reason))
        case .success(let value):
            accepted = value
        }
        if request.head.method == .TRACE {
            // TRACE echoes the request, cookies included, to whoever can make a browser send it.
            return .refused(.jsonError(.methodNotAllowed, code: "method_not_allowed", detail: "TRACE is not served"))
        }
        var given: String? = nil
        var givenIsValid = false
        var hosts = 0
        var connection = ConnectionOptions()
        // From the field bytes: only `Host`'s value becomes a string, checked as the bytes it came
        // in (the generic check of the string cost a hit about 300 instructions more).
        request.head.headers.forEachField { name, value in
            switch name.count {  // most names are ruled out by their length alone
            case 4 where ASCII.equalIgnoringCase(name, "host"):
                hosts += 1
                if hosts == 1 {
                    given = String(decoding: value, as: UTF8.self)
                    givenIsValid = HostName.isValid(bytes: value)
                }
            case 10 where ASCII.equalIgnoringCase(name, "connection"):
                connection.read(bytes: value)
            default:
                break
            }
            return hosts < 2
        }
        guard hosts < 2 else {
            return .refused(.jsonError(.badRequest, code: "bad_request", detail: "more than one Host header"))
        }
        if given != nil, !givenIsValid {
            return .refused(.jsonError(.badRequest, code: "bad_request", detail: "Host is not a valid host[:port]"))
        }
        if given == nil, accepted.authority == nil, request.head.version.minor >= 1 {
            return .refused(
                .jsonError(.badRequest, code: "bad_request", detail: "an HTTP/1.1 request needs a Host header"))
        }
        // RFC 9112 3.2.2: with an absolute-form target, its authority is the host.
        guard let host = accepted.authority ?? given, let cache = table.cache(forHost: host) else {
            return .noTenant(target: accepted.target)
        }
        var target = accepted.target
        if cache.tenant.normalizePath, !accepted.isNormal {
            guard let normalized = RequestTarget.normalize(target) else {
                return .refused(
                    .jsonError(.badRequest, code: "bad_request", detail: "the request target has a broken %-encoding"))
            }
            target = normalized
        }
        if cache.upstreamHasBasePath, !RequestTarget.staysUnderBasePath(target) {
            return .refused(
                .jsonError(
                    .badRequest, code: "bad_request", detail: "the request target leaves the tenant's upstream path"))
        }
        // The request carries the tenant's canonical `Host` from here on, so a `Vary: Host` variant
        // and a waiter's comparison see what the upstream is sent, never a client's alias, port or
        // case. It is copied only when something changes, which a hit in normal form never needs.
        let canonical = cache.canonicalHost
        guard target != request.head.uri || given != canonical || connection.namesOtherFields else {
            return .admitted(nil, cache, clientHost: host)
        }
        var admitted = request
        admitted.head.uri = target
        if given != canonical { admitted.head.headers.replaceOrAdd(name: "host", value: canonical) }
        // Headers the client names in `Connection` are hop-by-hop: never sent upstream, so they must
        // not select a stored variant either (`Connection: accept-language` would otherwise store
        // the default answer under the French key).
        if connection.namesOtherFields {
            var named: Set<[UInt8]> = []
            for value in request.head.headers["connection"] {
                for token in value.split(separator: ",") {
                    let name = token.trimmingSpaces()
                    if !name.isEmpty, !name.caseInsensitiveEquals("close"), !name.caseInsensitiveEquals("keep-alive") {
                        named.insert(name.utf8.map(ASCII.lowercased))
                    }
                }
            }
            admitted.head.headers.remove(lowercasedNamesIn: named)
        }
        return .admitted(admitted, cache, clientHost: host)
    }
}
