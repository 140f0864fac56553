import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// The connection handler's own reading (`HTTPConnectionHandler+Reading`: leftover bytes, reads
/// joined, input dropped after a refusal) on the same bytes the `http-request` target decodes. What
/// it serves must be, in order, the complete requests the decoder reads through NIO's
/// `ByteToMessageHandler` (a prefix of them: a refusal or a close ends the serving), each once, and
/// what it writes must not depend on where the reads were split.
enum ConnectionReadingCheck {
    /// A request as served: its head as compared, and its body.
    struct Served: Equatable {
        var head: RequestDecoderDifferential.Part
        var body: [UInt8]
    }

    /// Answers every request at once, recording it.
    final class RecordingResponder: HTTPResponder {
        let served = Mutex<[Served]>([])
        var fixedHeaders: FixedHeaderLines { .none }

        func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
            let body = request.body.map { Array($0.readableBytesView) } ?? []
            served.withLock {
                $0.append(Served(head: RequestDecoderDifferential.part(request.head.httpRequestHead), body: body))
            }
            return .now(EdgeResponse(status: .ok, headers: HTTPHeaders(), body: ByteBuffer(string: "served")))
        }
    }

    /// What the handler served and wrote for `bytes` read in `reads`.
    static func handle(_ bytes: [UInt8], reads: [Range<Int>]) -> (served: [Served], written: [UInt8]) {
        let responder = RecordingResponder()
        let channel = EmbeddedChannel()
        do {
            try channel.pipeline.syncOperations.addHandler(
                HTTPConnectionHandler(responder: responder, limits: EdgeConfig.Limits()))
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)  // at once, embedded
        } catch {
            preconditionFailure("http-request: the connection handler could not be set up: \(error)")
        }
        for read in reads where !read.isEmpty {
            guard channel.isActive else { break }
            try? channel.writeInbound(ByteBuffer(bytes: bytes[read]))
        }
        var written: [UInt8] = []
        while let part = try? channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { written += buffer.readableBytesView }
        }
        _ = try? channel.finish(acceptAlreadyClosed: true)
        return (responder.served.withLock { $0 }, written)
    }

    /// The complete requests (a head, its body, its end) among decoded parts, in order.
    static func complete(_ parts: [RequestDecoderDifferential.Part]) -> [Served] {
        var requests: [Served] = []
        var current: Served?
        for part in parts {
            switch part {
            case .head: current = Served(head: part, body: [])
            case .body(let bytes): current?.body += bytes
            case .end:
                if let request = current { requests.append(request) }
                current = nil
            }
        }
        return requests
    }

    /// Whether every status line written is the responder's `200` (or an interim `100`).
    static func onlyServed(_ written: [UInt8]) -> Bool {
        let text = String(decoding: written, as: UTF8.self)
        var rest = text[...]
        while let line = rest.range(of: "HTTP/1.") {
            let status = rest[line.upperBound...].dropFirst(2).prefix(3)
            if status != "200" && status != "100" { return false }
            rest = rest[line.upperBound...]
        }
        return true
    }

    static func check(
        _ bytes: [UInt8], twoReads: [Range<Int>], pieces: [Range<Int>]?, decoded: [RequestDecoderDifferential.Part]
    ) {
        let two = handle(bytes, reads: twoReads)
        let expected = complete(decoded)
        guard two.served.count <= expected.count, zip(two.served, expected).allSatisfy(==) else {
            RequestDecoderDifferential.fail("the handler served \(two.served), the decoder read \(expected)", bytes)
        }
        // Serving ends early only with a refusal, which is an answer other than the responder's 200.
        if onlyServed(two.written), two.served.count != expected.count {
            RequestDecoderDifferential.fail(
                "the handler answered only 200 but served \(two.served.count) of \(expected.count) requests", bytes)
        }
        guard let pieces else { return }
        let small = handle(bytes, reads: pieces)
        if small.served != two.served || small.written != two.written {
            RequestDecoderDifferential.fail(
                "the handler in small reads served \(small.served.count) and wrote "
                    + "\(String(decoding: small.written, as: UTF8.self).debugDescription); in two reads "
                    + "\(two.served.count), \(String(decoding: two.written, as: UTF8.self).debugDescription)",
                bytes)
        }
    }
}
