import Foundation
import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// One complete request as the connection handler hands it to a responder.
package struct EdgeRequest: Sendable {
    package var head: EdgeRequestHead
    package var body: ByteBuffer?
    /// The socket peer, for `X-Forwarded-For`; formatted only when a request goes upstream.
    package var peer: SocketAddress?
    package var peerAddress: String? { peer?.ipAddress }

    package init(head: EdgeRequestHead, body: ByteBuffer?, peer: SocketAddress?) {
        self.head = head
        self.body = body
        self.peer = peer
    }
}

/// One complete response; the connection handler adds `Content-Length` and `Connection`.
package struct EdgeResponse: Sendable {
    package var status: HTTPResponseStatus
    package var headers: HTTPHeaders
    package var body: ByteBuffer?
    /// Headers already in wire form (`Name: value\r\n`…), written before `headers`: a hit's stored block.
    package var rawHeaders: ByteBuffer? = nil
    /// False for `HEAD` and `304`: `Content-Length` describes a body that is not sent.
    package var sendBody = true
    /// Content-Length to announce when `sendBody` is false (HEAD); nil means none.
    package var announcedLength: Int? = nil
    /// `Age`, written after the stored block: with `cacheStatus`, all a hit adds to its stored head.
    package var age: Int? = nil
    /// `Cache-Status`, written from its parts so a hit builds no string for it.
    package var cacheStatus: CacheStatusField? = nil
    /// `X-Edge-Preferred-Region` (`geo_mode: hint`), written after `Cache-Status`: a region name from
    /// the bundle (a validated token), so a hinted hit still builds no `HTTPHeaders`.
    package var preferredRegion: String? = nil

    package init(
        status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer?, rawHeaders: ByteBuffer? = nil,
        sendBody: Bool = true, announcedLength: Int? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.rawHeaders = rawHeaders
        self.sendBody = sendBody
        self.announcedLength = announcedLength
    }

    /// A JSON error body `{"error":code,"detail":…}`; detail must never carry secrets.
    package static func jsonError(_ status: HTTPResponseStatus, code: String, detail: String? = nil) -> EdgeResponse {
        var text = "{\"error\":\"\(code)\""
        if let detail { text += ",\"detail\":\(JSONText.quote(detail))" }
        text += "}"
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return EdgeResponse(status: status, headers: headers, body: ByteBuffer(string: text))
    }

    package static func json(_ status: HTTPResponseStatus, _ text: String) -> EdgeResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return EdgeResponse(status: status, headers: headers, body: ByteBuffer(string: text))
    }
}

/// A responder's answer: ready now (a hit, an admin call), or later (anything that goes upstream).
/// The immediate case lets the hit path skip allocating and chaining futures.
package enum ResponderResult {
    case now(EdgeResponse)
    case later(EventLoopFuture<EdgeResponse>)
}

/// A response's `Cache-Status` (RFC 9211) and the cache name it is given under.
package struct CacheStatusField: Sendable {
    package var status: CacheStatus
    package var cacheName: String

    package init(_ status: CacheStatus, cacheName: String) {
        self.status = status
        self.cacheName = cacheName
    }
}

/// Turns a request into a response. Implementations answer on `eventLoop` and never block it.
package protocol HTTPResponder: Sendable {
    func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult
    /// Header fields on every response, including errors the handler produces itself; a field of the
    /// same name in a response's own headers is left out.
    var fixedHeaders: FixedHeaderLines { get }
    /// An answer for a request head that must not have its body read (a call that needs a token
    /// and has none), given before the body arrives; nil lets the request through.
    func screen(_ request: EdgeRequest) -> EdgeResponse?
}

package extension HTTPResponder {
    func screen(_ request: EdgeRequest) -> EdgeResponse? { nil }
}

package enum JSONText {
    /// A JSON string literal for `text`.
    package static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

package extension HTTPHeaders {
    /// The core's view of these headers.
    var fields: [HeaderField] { map { HeaderField($0.name, $0.value) } }

    init(fields: [HeaderField]) {
        self.init(fields.map { ($0.name, $0.value) })
    }
}
