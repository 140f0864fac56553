import NIOCore
import NIOEmbedded
import NIOHTTP1
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

/// `StrictRequestDecoder` on `EmbeddedChannel`: the parts it produces for bodies of each framing and
/// reads of every size, and the answer the connection gives for a request it refuses.
@Suite("Strict request decoder on EmbeddedChannel")
struct StrictRequestDecoderTests {
    static func decoder() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(StrictRequestDecoder(maxHeadBytes: 4096)))
        return channel
    }

    /// Heads as `METHOD target`, bodies as their text, ends as `end` (with the trailer names).
    static func parts(_ channel: EmbeddedChannel) throws -> [String] {
        var parts: [String] = []
        while let part = try channel.readInbound(as: EdgeRequestPart.self) {
            switch part {
            case .head(let head): parts.append("\(head.method.rawValue) \(head.uri) \(head.version)")
            case .body(let buffer):
                if let last = parts.last, last.hasPrefix("body ") {
                    parts[parts.count - 1] = last + String(buffer: buffer)
                } else {
                    parts.append("body " + String(buffer: buffer))
                }
            case .end(let trailers): parts.append("end" + (trailers.map { " " + $0.map(\.name).joined() } ?? ""))
            }
        }
        return parts
    }

    @Test func bodiesOfEachFramingInReadsOfEverySize() throws {
        let text =
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
            + "GET /g HTTP/1.0\r\n\r\n"
        let expected = [
            "POST /p HTTP/1.1", "body hello", "end", "PUT /c HTTP/1.1", "body abcde", "end X-T", "GET /g HTTP/1.0",
            "end",
        ]
        let bytes = Array(text.utf8)
        for size in [bytes.count, 1, 2, 7, 64] {
            let channel = try Self.decoder()
            var offset = 0
            while offset < bytes.count {
                try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + size)]))
                offset += size
            }
            #expect(try Self.parts(channel) == expected, "reads of \(size) bytes")
        }
    }

    @Test func headsCarryTheirFieldsAsNIOsDo() throws {
        let channel = try Self.decoder()
        try channel.writeInbound(
            ByteBuffer(string: "GET /x?q=1 HTTP/1.1\r\nHost: a.test\r\nX-Empty:\r\nConnection: close\r\n\r\n"))
        guard case .head(let head) = try channel.readInbound(as: EdgeRequestPart.self) else {
            Issue.record("no head")
            return
        }
        #expect(head.method == .GET && head.uri == "/x?q=1" && head.version == .http1_1)
        #expect(
            head.headers.map { [$0.name, $0.value] } == [
                ["Host", "a.test"], ["X-Empty", ""], ["Connection", "close"],
            ])
        #expect(head.headers.first(name: "x-empty") == "" && head.headers.contains(name: "X-EMPTY"))
        #expect(!head.keepsConnection, "keep-alive is read from the fields")
        #expect(head.headers.first(name: "connection") == "close" && head.headers.first(name: "HOST") == "a.test")
    }

    /// A head's fields are a slice of the read that carried them: the decoder's later reads, which
    /// append to what is left of that read, leave them as they were.
    @Test func aHeadsFieldsOutliveTheReadsAfterIt() throws {
        let channel = try Self.decoder()
        let first = "GET /a HTTP/1.1\r\nHost: a.test\r\nX-Long: " + String(repeating: "v", count: 40) + "\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: first + "GET /b HTTP/1.1\r\nHo"))
        guard case .head(let a) = try channel.readInbound(as: EdgeRequestPart.self) else {
            Issue.record("no first head")
            return
        }
        try channel.writeInbound(
            ByteBuffer(string: "st: b.test\r\nX-Long: " + String(repeating: "w", count: 4000) + "\r\n\r\n"))
        var heads: [EdgeRequestHead] = []
        while let part = try channel.readInbound(as: EdgeRequestPart.self) {
            if case .head(let head) = part { heads.append(head) }
        }
        #expect(a.headers.first(name: "x-long") == String(repeating: "v", count: 40) && a.headers["host"] == ["a.test"])
        #expect(heads.map { $0.headers.first(name: "host") } == ["b.test"])
        #expect(heads.first?.headers.first(name: "x-long") == String(repeating: "w", count: 4000))
    }

    /// A head read from a large buffer (a 64 KiB read, as NIO's adaptive allocator grows to) holds
    /// a copy of its own bytes; from a read about its size it shares them.
    @Test func aHeadHoldsLittleMoreThanItsOwnBytes() throws {
        let head = "GET /a HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\n\r\n"
        for capacity in [1024, 65_536] {
            let channel = try Self.decoder()
            var read = ByteBufferAllocator().buffer(capacity: capacity)
            read.writeString(head)
            try channel.writeInbound(read)
            guard case .head(let decoded) = try channel.readInbound(as: EdgeRequestPart.self) else {
                Issue.record("no head")
                return
            }
            #expect(decoded.headers.first(name: "x-a") == "1" && decoded.headers.count == 2)
            if read.storageCapacity - head.utf8.count <= StrictRequestDecoder.sharedSlackBytes {
                #expect(decoded.headers.heldBytes == read.storageCapacity, "shared with the read")
            } else {
                #expect(decoded.headers.heldBytes < read.storageCapacity, "a copy of its own")
                #expect(decoded.headers.heldBytes <= head.utf8.count + StrictRequestDecoder.sharedSlackBytes)
            }
        }
    }

    @Test func nothingBehindARequestThatClosesTheConnectionIsRead() throws {
        for first in [
            "GET /a HTTP/1.0\r\n\r\n", "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
        ] {
            let channel = try Self.decoder()
            try channel.writeInbound(ByteBuffer(string: first + "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"))
            try channel.writeInbound(ByteBuffer(string: "GET /c HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(try Self.parts(channel).count == 2, "only the closing request: \(first.debugDescription)")
        }
        let keepAlive = try Self.decoder()
        try keepAlive.writeInbound(
            ByteBuffer(string: "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try Self.parts(keepAlive) == ["GET /a HTTP/1.0", "end", "GET /b HTTP/1.1", "end"])
    }

    @Test func aRefusalIsThrownAndNothingAfterItIsRead() throws {
        let channel = try Self.decoder()
        #expect(throws: RequestRefusal(.lengthWithTransferEncoding)) {
            try channel.writeInbound(
                ByteBuffer(
                    string: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"))
        }
        #expect(try Self.parts(channel).isEmpty)
        let chunk = try Self.decoder()
        #expect(throws: RequestRefusal(.malformedChunk)) {
            try chunk.writeInbound(
                ByteBuffer(string: "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"))
        }
        #expect(try Self.parts(chunk) == ["PUT / HTTP/1.1", "body hello"], "what came before the fault was read")
    }

    @Test(arguments: [
        ("PURGE / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 501", "not_implemented"),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505", "http_version_not_supported"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 400", "bad_request"),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "v", count: 20_000))\r\n\r\n", "HTTP/1.1 431",
            "request_header_fields_too_large"
        ),
    ])
    func theConnectionAnswersARefusalWithItsStatusAndCloses(_ text: String, _ status: String, _ code: String) throws {
        let channel = try ConnectionHandlerTests.channel(ConnectionHandlerTests.ScriptedResponder())
        try? channel.writeInbound(ByteBuffer(string: text))
        let written = try ConnectionHandlerTests.written(channel)
        #expect(written.hasPrefix(status))
        #expect(written.contains("\"error\":\"\(code)\""))
        #expect(written.lowercased().contains("connection: close"))
    }
}
