import NIOCore
import TenantEdgeCore
import TenantEdgeNative

/// A command for `RedisCommandHandler`: its arguments (sent as raw bytes) and what to call with
/// its reply, on the connection's event loop.
struct RedisCommand {
    typealias Completion = (Result<RedisConnection.Reply, EdgeError>) -> Void
    var arguments: [[UInt8]]
    var completion: Completion
}

/// The Redis protocol on a NIO channel: commands are written as RESP arrays of bulk strings and
/// replies, parsed by hiredis's reader, complete the commands in the order they were written (Redis
/// answers a connection's commands in order, so every command in flight is pipelined).
///
/// A reply nobody asked for, bytes that are not RESP, a reply past the reader's bound, or more than
/// `maxInFlight` commands waiting fail every waiting command and close the channel: the stream can
/// no longer be matched to its commands, and the tier reconnects on its next call.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = ByteBuffer

    private let reader: RedisReplyReader
    private let maxInFlight: Int
    private var waiting = CircularBuffer<RedisCommand.Completion>(initialCapacity: 16)
    /// Set once the channel is unusable; later commands fail at once with it.
    private var failure: EdgeError?
    /// When bytes last arrived while commands waited, for `isStalled`.
    private(set) var lastProgress = NIODeadline.now()

    init(reader: RedisReplyReader, maxInFlight: Int) {
        self.reader = reader
        self.maxInFlight = maxInFlight
    }

    var inFlight: Int { waiting.count }

    /// True when commands wait and nothing has arrived for `timeout`: a Redis that stopped answering
    /// mid-stream, which a live TCP connection alone would never reveal.
    func isStalled(after timeout: TimeAmount, now: NIODeadline = .now()) -> Bool {
        !waiting.isEmpty && now - lastProgress >= timeout
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        if let failure {
            promise?.fail(failure)
            return command.completion(.failure(failure))
        }
        guard waiting.count < maxInFlight else {
            let busy = EdgeError(.redisFailure, "more than \(maxInFlight) Redis calls in flight on one connection")
            promise?.fail(busy)
            return command.completion(.failure(busy))
        }
        var buffer = context.channel.allocator.buffer(capacity: Self.encodedSize(command.arguments))
        Self.encode(command.arguments, into: &buffer)
        if waiting.isEmpty { lastProgress = .now() }
        waiting.append(command.completion)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard failure == nil else { return }
        lastProgress = .now()
        do throws(EdgeError) {
            try buffer.withUnsafeReadableBytes { bytes throws(EdgeError) in try reader.feed(bytes) }
            while let reply = try reader.next() {
                guard let completion = waiting.popFirst() else {
                    throw EdgeError(.redisFailure, "Redis sent a reply no command asked for")
                }
                completion(.success(reply))
            }
        } catch {
            failAll(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(EdgeError(.redisFailure, "Redis connection lost"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(EdgeError(.redisFailure, "Redis connection failed"))
        context.close(promise: nil)
    }

    private func failAll(_ error: EdgeError) {
        if failure == nil { failure = error }
        while let completion = waiting.popFirst() { completion(.failure(error)) }
    }

    // MARK: RESP

    /// `*<count>\r\n` then `$<length>\r\n<bytes>\r\n` per argument.
    static func encode(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        writeLine(UInt8(ascii: "*"), arguments.count, into: &buffer)
        for argument in arguments {
            writeLine(UInt8(ascii: "$"), argument.count, into: &buffer)
            buffer.writeBytes(argument)
            buffer.writeBytes(crlf)
        }
    }

    static func encodedSize(_ arguments: [[UInt8]]) -> Int {
        arguments.reduce(16) { $0 &+ $1.count &+ 24 }
    }

    private static let crlf: [UInt8] = [13, 10]

    private static func writeLine(_ marker: UInt8, _ number: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(marker)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: more than any Int has digits
        withUnsafeMutableBytes(of: &digits) { raw in
            var value = UInt(number.magnitude)
            var start = raw.count
            repeat {
                start -= 1
                raw[start] = UInt8(ascii: "0") &+ UInt8(value % 10)
                value /= 10
            } while value > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start...]))
        }
        buffer.writeBytes(crlf)
    }
}
