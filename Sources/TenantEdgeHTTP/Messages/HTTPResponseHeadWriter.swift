import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// Writes HTTP/1.1 response heads as bytes. It replaces NIO's `HTTPResponseEncoder` on our
/// listeners so that a hit can send the stored header block (already in wire form, see
/// `ResponseRecord`) as it is, without turning it into `HTTPHeaders` strings first. Every response
/// has a known length, so there is no chunked encoding; `Content-Length` and `Connection` are always
/// written here and dropped from the headers given.
package enum HTTPResponseHeadWriter {
    package static func write(
        version: HTTPVersion, status: HTTPResponseStatus, headers: HTTPHeaders, rawHeaders: ByteBuffer?,
        contentLength: Int?, connection: String?, into buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        if var raw = rawHeaders { buffer.writeBuffer(&raw) }
        for (name, value) in headers
        where !name.caseInsensitiveEquals("content-length") && !name.caseInsensitiveEquals("connection") {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if let contentLength {
            buffer.writeStaticString("content-length: ")
            buffer.writeString(String(contentLength))
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
}
