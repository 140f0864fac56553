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
    package static func write(
        version: HTTPVersion, response: EdgeResponse, fixed: FixedHeaderLines, contentLength: Int?,
        connection: String?, into buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        if response.status == .ok {
            buffer.writeStaticString("200 OK\r\n")
        } else {
            buffer.writeString(String(response.status.code))
            buffer.writeStaticString(" ")
            buffer.writeString(response.status.reasonPhrase)
            buffer.writeStaticString("\r\n")
        }
        if var raw = response.rawHeaders { buffer.writeBuffer(&raw) }
        for (name, value) in response.headers
        where !name.caseInsensitiveEquals("content-length") && !name.caseInsensitiveEquals("connection")
            && !fixed.overrides(name)
        {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if let age = response.age {
            buffer.writeStaticString("age: ")
            writeDecimal(age, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        if let field = response.cacheStatus {
            buffer.writeStaticString("cache-status: ")
            writeCacheStatus(field, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        if let region = response.preferredRegion {
            buffer.writeStaticString("x-edge-preferred-region: ")
            buffer.writeString(region)
            buffer.writeStaticString("\r\n")
        }
        var fixedBytes = fixed.bytes
        buffer.writeBuffer(&fixedBytes)
        if let contentLength {
            buffer.writeStaticString("content-length: ")
            writeDecimal(contentLength, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        if let connection {
            buffer.writeStaticString("connection: ")
            buffer.writeString(connection)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    package static func writeContinue(version: HTTPVersion, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n")
    }

    /// The hit statuses from their parts; the rest through `CacheStatus.headerValue`.
    private static func writeCacheStatus(_ field: CacheStatusField, into buffer: inout ByteBuffer) {
        switch field.status {
        case .hit(let ttl), .sharedHit(let ttl):
            buffer.writeString(field.cacheName)
            buffer.writeStaticString("; hit; ttl=")
            writeDecimal(ttl, into: &buffer)
            if case .sharedHit = field.status { buffer.writeStaticString("; detail=l2") }
        default:
            buffer.writeString(field.status.headerValue(cacheName: field.cacheName))
        }
    }

    /// A non-negative integer in decimal (negative ones as 0), without making a string of it.
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        var rest = UInt(max(value, 0))
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt.max has 20 digits
        withUnsafeMutableBytes(of: &digits) { raw in
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }
}
