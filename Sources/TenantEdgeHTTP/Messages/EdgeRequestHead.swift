import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// A request head as the connection hands it to a responder: NIO's `HTTPRequestHead` with the
/// fields kept as received (`RequestFields`), so a hit builds no `HTTPHeaders`, and the connection's
/// keep-alive verdict read once when the head arrives.
///
/// Its parts live in one copy-on-write box, as NIO's head keeps them: a head travels through the
/// pipeline as `NIOAny`, whose inline room is three words, and a larger value is boxed there for
/// every request (an allocation a hit paid when the parts were stored inline).
package struct EdgeRequestHead: Sendable, Equatable {
    /// Mutated only through `unique()`, which copies a shared box first, so no two heads see one
    /// change: a value type's rule, hence `@unchecked Sendable`.
    private final class Parts: @unchecked Sendable {
        var method: HTTPMethod
        var uri: String
        var version: HTTPVersion
        var headers: RequestFields
        let keepsConnection: Bool

        init(method: HTTPMethod, uri: String, version: HTTPVersion, headers: RequestFields, keepsConnection: Bool) {
            self.method = method
            self.uri = uri
            self.version = version
            self.headers = headers
            self.keepsConnection = keepsConnection
        }

        func copy() -> Parts {
            Parts(method: method, uri: uri, version: version, headers: headers, keepsConnection: keepsConnection)
        }
    }

    private var parts: Parts

    package var method: HTTPMethod {
        get { parts.method }
        set { unique().method = newValue }
    }

    package var uri: String {
        get { parts.uri }
        set { unique().uri = newValue }
    }

    package var version: HTTPVersion {
        get { parts.version }
        set { unique().version = newValue }
    }

    /// Edited in place (`_modify`): through a getter and a setter every edit would copy the fields
    /// the box still holds, once per field a client's `Connection` names.
    package var headers: RequestFields {
        get { parts.headers }
        _modify { yield &unique().headers }
    }

    /// Whether the connection stays open after this request is answered, as the client's fields
    /// say: NIO's `isKeepAlive` rule (`ConnectionOptions`), and never after a request with an
    /// `Upgrade` field, which this server does not grant. A front proxy that makes the connection a
    /// tunnel once it forwards such a request would pass whatever the client sends behind it unseen
    /// (request smuggling through an upgrade), so nothing behind it is read and the connection
    /// closes after its answer. Edits the node makes to the fields or the version later do not
    /// change it.
    package var keepsConnection: Bool { parts.keepsConnection }

    package init(version: HTTPVersion, method: HTTPMethod, uri: String, headers: RequestFields) {
        parts = Parts(
            method: method, uri: uri, version: version, headers: headers,
            keepsConnection: Self.keepsConnection(headers, minorVersion: Int(version.minor)))
    }

    package init(_ head: HTTPRequestHead) {
        self.init(version: head.version, method: head.method, uri: head.uri, headers: RequestFields(head.headers))
    }

    private mutating func unique() -> Parts {
        if !isKnownUniquelyReferenced(&parts) { parts = parts.copy() }
        return parts
    }

    package static func == (lhs: EdgeRequestHead, rhs: EdgeRequestHead) -> Bool {
        lhs.parts === rhs.parts
            || (lhs.method == rhs.method && lhs.uri == rhs.uri && lhs.version == rhs.version
                && lhs.headers == rhs.headers && lhs.keepsConnection == rhs.keepsConnection)
    }

    /// NIO's form of this head, for what sends or compares it whole.
    package var httpRequestHead: HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers.httpHeaders)
    }

    /// Read in one pass over the field bytes without allocating: NIO's `isKeepAlive` cost about
    /// 5,700 instructions for a request with a `Connection` field.
    private static func keepsConnection(_ fields: RequestFields, minorVersion: Int) -> Bool {
        var options = ConnectionOptions()
        var upgrade = false
        fields.forEachField { name, value in
            switch name.count {  // most names are ruled out by their length alone
            case 7 where ASCII.equalsIgnoringCase(name, "upgrade"):
                upgrade = true
                return false
            case 10 where ASCII.equalsIgnoringCase(name, "connection"):
                options.read(bytes: value)
            default:
                break
            }
            return true
        }
        return !upgrade && options.keepsConnection(minorVersion: minorVersion)
    }
}
