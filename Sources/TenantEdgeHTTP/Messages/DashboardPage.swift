import Foundation
import NIOCore
import NIOHTTP1
import TenantEdgeNative

/// A self-contained page served from the binary, with headers that keep it to itself: a
/// Content-Security-Policy allowing only its own inline scripts and styles (by SHA-256), requests
/// to its own origin, no framing, no referrer.
package struct DashboardPage: Sendable {
    package let body: [UInt8]
    package let policy: String

    package init(html: [UInt8]) {
        body = html
        let text = String(decoding: html, as: UTF8.self)
        let scripts = Self.blocks(of: "script", in: text).map(Self.hashSource)
        let styles = Self.blocks(of: "style", in: text).map(Self.hashSource)
        policy =
            "default-src 'none'; script-src \(scripts.joined(separator: " "));"
            + " style-src \(styles.joined(separator: " ")); connect-src 'self'; img-src 'self' data:;"
            + " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }

    package func response() -> EdgeResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/html; charset=utf-8")
        headers.add(name: "content-security-policy", value: policy)
        headers.add(name: "x-content-type-options", value: "nosniff")
        headers.add(name: "x-frame-options", value: "DENY")
        headers.add(name: "referrer-policy", value: "no-referrer")
        return EdgeResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: body))
    }

    /// The text inside each `<tag …>…</tag>` of the page (the page is ours: a plain scan suffices).
    package static func blocks(of tag: String, in text: String) -> [String] {
        var found: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "<\(tag)"), let end = rest[open.upperBound...].range(of: ">"),
            let close = rest[end.upperBound...].range(of: "</\(tag)>")
        {
            found.append(String(rest[end.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return found
    }

    package static func hashSource(_ block: String) -> String {
        "'sha256-" + Data(OpenSSL.sha256(Array(block.utf8))).base64EncodedString() + "'"
    }
}
