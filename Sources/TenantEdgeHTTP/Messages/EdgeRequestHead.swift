import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// A request head as the connection hands it to a responder: NIO's `HTTPRequestHead` with the
/// fields kept as received (`RequestFields`), so a hit builds no `HTTPHeaders`, and the connection's
/// keep-alive verdict read once when the head arrives.
///
/// Its parts are stored inline, not in a copy-on-write box as NIO's head keeps them: a box was
/// needed while heads crossed the listener's pipeline as `NIOAny` (three words of room; they do
/// now only in the fuzz target and tests), and reading a boxed part copies it out (a retain of the
/// target, or of the fields' bytes and places, a dozen times a hit), or, through a `_read` accessor
/// across modules, allocates the accessor's frame.
package struct EdgeRequestHead: Sendable, Equatable {
    package var method: HTTPMethod
    package var uri: String
    package var version: HTTPVersion
    package var headers: RequestFields

    /// Whether the connection stays open after this request is answered, as the client's fields
    /// say: NIO's `isKeepAlive` rule (`ConnectionOptions`), and never after a request with an
    /// `Upgrade` field, which this server does not grant. A front proxy that makes the connection a
    /// tunnel once it forwards such a request would pass whatever the client sends behind it unseen
    /// (request smuggling through an upgrade), so nothing behind it is read and the connection
    /// closes after its answer. Edits the node makes to the fields or the version later do not
    /// change it.
    package let keepsConnection: Bool

    package init(version: HTTPVersion, method: HTTPMethod, uri: String, headers: RequestFields) {
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers
        self.keepsConnection = Self.keepsConnection(headers, minorVersion: Int(version.minor))
    }

    package init(_ head: HTTPRequestHead) {
        self.init(version: head.version, method: head.method, uri: head.uri, headers: RequestFields(head.headers))
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
            case 7 where ASCII.equalIgnoringCase(name, "upgrade"):
                upgrade = true
                return false
            case 10 where ASCII.equalIgnoringCase(name, "connection"):
                options.read(bytes: value)
            default:
                break
            }
            return true
        }
        return !upgrade && options.keepsConnection(minorVersion: minorVersion)
    }
}
