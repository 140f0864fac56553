import NIOCore
import NIOHTTP1
import TenantEdgeCore

/// The parts of a request as the connection handler reads them: NIO's, with the head's fields kept
/// as received (`EdgeRequestHead`).
package typealias EdgeRequestPart = HTTPPart<EdgeRequestHead, ByteBuffer>

/// Decodes HTTP/1.1 requests with the core's strict parser (`RequestHeadScanner`,
/// `RequestHeadParser`, `ChunkedBodyReader`) into the parts NIO's `HTTPRequestDecoder` produces, a
/// head's fields left in the bytes that carried them (`RequestFields`). It replaced NIO's decoder
/// on the listeners because it costs fewer instructions per request (docs/decisions.md #52, #76)
/// and refuses every leniency that lets two parsers read one request differently. A refusal is
/// thrown as a `RequestRefusal`, which the connection handler answers with its status and closes.
/// The fuzz target `http-request` feeds arbitrary bytes to this and to NIO's decoder: what this
/// accepts, NIO reads the same way.
package struct StrictRequestDecoder: ByteToMessageDecoder {
    package typealias InboundOut = EdgeRequestPart

    private enum State {
        case head
        case body(remaining: Int)
        case chunked(ChunkedBodyReader)
        /// After a request that does not keep the connection: the handler closes once it is
        /// answered, so nothing a client sent behind it is read (llhttp refuses it, or, after an
        /// upgrade request, stops reading).
        case discarding
    }

    /// How much more than a head's own bytes its fields may keep alive by sharing the read's storage.
    package static let sharedSlackBytes = 4096

    private var state = State.head
    private var scanner: RequestHeadScanner
    private let maxHeadBytes: Int
    /// Whether the request being read keeps the connection (`keepsConnection`, as the handler).
    private var keepAlive = true

    /// `maxHeadBytes` bounds a head's raw bytes and a trailer section; the connection's state
    /// machine still applies `limits.max_header_bytes` to the head it counts.
    package init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
        self.scanner = RequestHeadScanner(maxHeadBytes: maxHeadBytes)
    }

    /// As a `ByteToMessageDecoder` (the fuzz target and the decoder's own tests run it so): each
    /// part goes down the pipeline. The listeners' connections run `decode(_:emit:)`
    /// themselves (`HTTPConnectionHandler+Reading`).
    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decode(&buffer) { context.fireChannelRead(NIOAny($0)) }
    }

    /// Reads the next part or two (a body's last bytes and its end) from `buffer`, hands them to
    /// `emit` in order, and says whether to call again (`.continue`) or wait for more bytes. A
    /// refusal is thrown as a `RequestRefusal`.
    package mutating func decode(
        _ buffer: inout ByteBuffer, emit: (EdgeRequestPart) -> Void
    ) throws -> DecodingState {
        switch state {
        case .head:
            return try decodeHead(&buffer, emit: emit)
        case .body(let remaining):
            guard buffer.readableBytes > 0, let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))
            else { return .needMoreData }
            emit(.body(slice))
            if slice.readableBytes == remaining {
                endRequest(trailers: nil, emit: emit)
            } else {
                state = .body(remaining: remaining - slice.readableBytes)
            }
            return .continue
        case .chunked(var reader):
            let step = buffer.withUnsafeReadableBytes { reader.next($0) }
            state = .chunked(reader)
            switch step {
            case .failure(let refusal):
                throw refusal
            case .success(.needMore):
                return .needMoreData
            case .success(.data(let count)):
                guard let slice = buffer.readSlice(length: count) else { return .needMoreData }
                emit(.body(slice))
            case .success(.framing(let count)):
                buffer.moveReaderIndex(forwardBy: count)
            case .success(.end(let end, let lines)):
                let trailers = try buffer.withUnsafeReadableBytes { bytes in
                    try Self.trailers(bytes, end: end, lines: lines)
                }
                buffer.moveReaderIndex(forwardBy: end)
                endRequest(trailers: trailers, emit: emit)
            }
            return .continue
        case .discarding:
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
    }

    private mutating func endRequest(trailers: HTTPHeaders?, emit: (EdgeRequestPart) -> Void) {
        state = keepAlive ? .head : .discarding
        emit(.end(trailers))
    }

    package mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // What a closing peer left half-sent is dropped, as NIO's decoder does with `.dropBytes`.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    private mutating func decodeHead(_ buffer: inout ByteBuffer, emit: (EdgeRequestPart) -> Void) throws
        -> DecodingState
    {
        let found = buffer.withUnsafeReadableBytes { scanner.scan($0) }
        switch found {
        case .incomplete:
            return .needMoreData
        case .refused(let refusal):
            throw refusal
        case .complete(let start, let end, let lines):
            let parsed = buffer.withUnsafeReadableBytes { bytes in
                Self.head(bytes, start: start, end: end, lines: lines)
            }
            let (layout, uri, spans) = try parsed.get()
            // The fields stay in the read's bytes, shared rather than copied, unless that read's
            // storage is much larger than the head: a head queued behind others or waiting on the
            // upstream then holds its bytes and a few KiB, never a read buffer of up to 64 KiB.
            guard
                let received = buffer.getSlice(at: buffer.readerIndex, length: end)?.compacted(
                    slack: Self.sharedSlackBytes),
                let fields = RequestFields(received: received, spans: spans)
            else {
                throw RequestRefusal(.malformedRequestLine)
            }
            let head = EdgeRequestHead(
                version: layout.minorVersion == 1 ? .http1_1 : .http1_0, method: HTTPMethod(layout.method), uri: uri,
                headers: fields)
            let framing = layout.framing
            buffer.moveReaderIndex(forwardBy: end)
            keepAlive = head.keepsConnection
            emit(.head(head))
            switch framing {
            case .none, .length(0):
                endRequest(trailers: nil, emit: emit)
            case .length(let length):
                state = .body(remaining: length)
            case .chunked:
                state = .chunked(ChunkedBodyReader(maxTrailerBytes: maxHeadBytes))
            }
            return .continue
        }
    }

    /// The layout, target and field places of a head the core parsed (offsets into `bytes`): one
    /// array of spans, sized once, and one string, the target.
    static func head(
        _ bytes: UnsafeRawBufferPointer, start: Int, end: Int, lines: Int
    ) -> Result<(RequestHeadLayout, String, [RequestFields.Span]), RequestRefusal> {
        var spans: [RequestFields.Span] = []
        spans.reserveCapacity(max(lines - 1, 0))
        let parsed = RequestHeadParser.parse(bytes, start: start, end: end, lines: lines) { name, value in
            spans.append(.init(name: name, value: value))
        }
        return parsed.map { layout in
            let uri = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[layout.target]), as: UTF8.self)
            return (layout, uri, spans)
        }
    }

    static func trailers(_ bytes: UnsafeRawBufferPointer, end: Int, lines: Int) throws(RequestRefusal) -> HTTPHeaders? {
        guard lines > 0 else { return nil }
        var fields: [(String, String)] = []
        fields.reserveCapacity(lines)
        let parsed = RequestHeadParser.parseTrailerFields(bytes, end: end) { name, value in
            append(name, value, to: &fields)
        }
        if case .failure(let refusal) = parsed { throw refusal }
        return HTTPHeaders(fields)
    }

    /// One field as NIO's `HTTPHeaders` holds it.
    private static func append(
        _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, to fields: inout [(String, String)]
    ) {
        fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }
}
