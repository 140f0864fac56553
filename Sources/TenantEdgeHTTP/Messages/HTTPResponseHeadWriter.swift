import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// Writes HTTP/1.1 response heads as bytes. It replaces NIO's `HTTPResponseEncoder` on our
/// listeners so that a hit can send the stored header block (already in wire form, see
/// `ResponseRecord`) as it is, without turning it into `HTTPHeaders` strings first. Every response
/// has a known length, so there is no chunked encoding; `Content-Length` and `Connection` are always
/// written here and dropped from the headers given. A hit's head is its stored block, `Age`,
/// `Cache-Status` and the listener's fixed fields: no `HTTPHeaders` and no string is built for it.
package enum HTTPResponseHeadWriter {
    /// The head goes into one reservation of the buffer sized for the longest head these parts can
    /// make, copied piece by piece (`HeadBytes`): a `writeStaticString` or `writeString` per piece
    /// cost about 150 instructions each, 2,961 per hit (`make bench-instructions`).
    package static func write(
        version: HTTPVersion, response: EdgeResponse, fixed: FixedHeaderLines, contentLength: Int?,
        connection: String?, into buffer: inout ByteBuffer
    ) {
        let statusCode = response.status == .ok ? nil : String(response.status.code)
        let reason = response.status == .ok ? "" : response.status.reasonPhrase
        let cacheStatusValue = response.cacheStatus.flatMap { field -> String? in
            switch field.status {
            case .hit, .sharedHit: nil  // written from its parts
            default: field.status.headerValue(cacheName: field.cacheName)
            }
        }
        var bound = 9 + 8 + (statusCode?.utf8.count ?? 0) + 1 + reason.utf8.count + 2
        bound += response.rawHeaders?.readableBytes ?? 0
        for (name, value) in response.headers { bound += name.utf8.count + value.utf8.count + 4 }
        if response.age != nil { bound += Self.decimalLine }
        if let field = response.cacheStatus {
            bound += 14 + (cacheStatusValue?.utf8.count ?? field.cacheName.utf8.count + 42) + 2
        }
        if let region = response.preferredRegion { bound += 25 + region.utf8.count + 2 }
        bound += fixed.bytes.readableBytes
        if contentLength != nil { bound += Self.decimalLine }
        if let connection { bound += 12 + connection.utf8.count + 2 }
        bound += 2
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { raw in
            var head = HeadBytes(raw)
            head.append(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            if let statusCode {
                head.append(string: statusCode)
                head.append(" ")
                head.append(string: reason)
                head.append("\r\n")
            } else {
                head.append("200 OK\r\n")
            }
            if let rawHeaders = response.rawHeaders { head.append(rawHeaders) }
            for (name, value) in response.headers
            where !name.caseInsensitiveEquals("content-length") && !name.caseInsensitiveEquals("connection")
                && !fixed.overrides(name)
            {
                head.append(string: name)
                head.append(": ")
                head.append(string: value)
                head.append("\r\n")
            }
            if let age = response.age {
                head.append("age: ")
                head.append(decimal: age)
                head.append("\r\n")
            }
            if let field = response.cacheStatus {
                head.append("cache-status: ")
                if let cacheStatusValue {
                    head.append(string: cacheStatusValue)
                } else if case .hit(let ttl) = field.status {
                    head.append(string: field.cacheName)
                    head.append("; hit; ttl=")
                    head.append(decimal: ttl)
                } else if case .sharedHit(let ttl) = field.status {
                    head.append(string: field.cacheName)
                    head.append("; hit; ttl=")
                    head.append(decimal: ttl)
                    head.append("; detail=l2")
                }
                head.append("\r\n")
            }
            if let region = response.preferredRegion {
                head.append("x-edge-preferred-region: ")
                head.append(string: region)
                head.append("\r\n")
            }
            head.append(fixed.bytes)
            if let contentLength {
                head.append("content-length: ")
                head.append(decimal: contentLength)
                head.append("\r\n")
            }
            if let connection {
                head.append("connection: ")
                head.append(string: connection)
                head.append("\r\n")
            }
            head.append("\r\n")
            return head.count
        }
    }

    /// The longest `name: <decimal>\r\n` line written for `age` and `content-length`: the name
    /// (16 bytes at most) and 20 digits (`UInt.max`).
    private static let decimalLine = 16 + 20 + 2

    package static func writeContinue(version: HTTPVersion, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n")
    }
}
