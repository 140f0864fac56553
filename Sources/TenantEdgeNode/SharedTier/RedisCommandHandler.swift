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
/// A reply nobody asked for, bytes that are not RESP, or a reply of more than `maxReplyBytes` (all
/// its bytes counted, an array's elements too) fail every waiting command and close the channel:
/// the stream can no longer be matched to its commands, and the tier reconnects on its next call.
/// A command beyond `maxInFlight` waiting commands or `maxWaitingBytes` of them fails alone, at once
/// (what a slow Redis makes the node hold is bounded; L2 calls are best effort).
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = ByteBuffer

    private let reader: RedisReplyReader
    private let maxInFlight: Int
    private let maxReplyBytes: Int
    private let maxWaitingBytes: Int
    /// Commands written and not yet answered, in order, with their encoded size.
    private var waiting = CircularBuffer<(completion: RedisCommand.Completion, bytes: Int)>(initialCapacity: 16)
    private var waitingBytes = 0
    /// Bytes read since the last complete reply: what the reply being read holds, parsed or not.
    private var replyBytes = 0
    /// Set once the channel is unusable; later commands fail at once with it.
    private var failure: EdgeError?
    /// When bytes last arrived while commands waited, for `isStalled`.
    private(set) var lastProgress = NIODeadline.now()
    /// Takes replies no command waits for, once the connection subscribed (pub/sub messages); nil:
    /// such a reply is a broken stream.
    var onPush: ((RedisConnection.Reply) -> Void)?

    init(reader: RedisReplyReader, maxInFlight: Int, maxReplyBytes: Int, maxWaitingBytes: Int) {
        self.reader = reader
        self.maxInFlight = maxInFlight
        self.maxReplyBytes = maxReplyBytes
        self.maxWaitingBytes = maxWaitingBytes
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
        let size = Self.encodedSize(command.arguments)
        guard waiting.count < maxInFlight, size <= maxWaitingBytes &- waitingBytes else {
            let busy = EdgeError(.redisFailure, "the Redis connection has too many calls in flight")
            promise?.fail(busy)
            return command.completion(.failure(busy))
        }
        var buffer = context.channel.allocator.buffer(capacity: size)
        Self.encode(command.arguments, into: &buffer)
        if waiting.isEmpty { lastProgress = .now() }
        waiting.append((command.completion, size))
        waitingBytes &+= size
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard failure == nil else { return }
        lastProgress = .now()
        do throws(EdgeError) {
            replyBytes &+= buffer.readableBytes
            guard replyBytes <= maxReplyBytes else {
                throw EdgeError(.redisFailure, "Redis sent a reply larger than \(maxReplyBytes) bytes")
            }
            try buffer.withUnsafeReadableBytes { bytes throws(EdgeError) in try reader.feed(bytes) }
            while let reply = try reader.next() {
                replyBytes = reader.bufferedBytes  // what is left belongs to the next reply
                if let (completion, bytes) = waiting.popFirst() {
                    waitingBytes &-= bytes
                    completion(.success(reply))
                } else if let onPush {
                    onPush(reply)
                } else {
                    throw EdgeError(.redisFailure, "Redis sent a reply no command asked for")
                }
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
        waitingBytes = 0
        while let (completion, _) = waiting.popFirst() { completion(.failure(error)) }
    }

    // MARK: RESP

    /// `*<count>\r\n` then `$<length>\r\n<bytes>\r\n` per argument, laid into one reservation of
    /// the exact size: a `ByteBuffer` write per piece (five an argument) cost an L2 read about
    /// 2,500 instructions of bounds checks (`make bench-instructions`, `TIER=l2`).
    static func encode(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        var size = lineSize(arguments.count)
        for argument in arguments { size &+= lineSize(argument.count) &+ argument.count &+ 2 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            writeLine(UInt8(ascii: "*"), arguments.count, into: out, at: &at)
            for argument in arguments {
                writeLine(UInt8(ascii: "$"), argument.count, into: out, at: &at)
                argument.withUnsafeBytes { write($0, into: out, at: &at) }
                writeCRLF(into: out, at: &at)
            }
            assert(at == size, "RESP encoding wrote other than it counted")
            return at
        }
    }

    /// An upper bound of `encode`'s bytes, for the in-flight budget.
    static func encodedSize(_ arguments: [[UInt8]]) -> Int {
        arguments.reduce(16) { $0 &+ $1.count &+ 24 }
    }

    /// The bytes of `<marker><number>\r\n`.
    private static func lineSize(_ number: Int) -> Int { 3 &+ digitCount(number.magnitude) }

    private static func digitCount(_ value: UInt) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count &+= 1
            rest /= 10
        }
        return count
    }

    /// Copies `bytes` to `out` at `at`. `encode` counts exactly what it writes (its `assert` checks
    /// that in tests); a write past the buffer's room would be a bug in counting, and stops the
    /// process rather than write past it.
    private static func write(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, at: inout Int) {
        precondition(bytes.count <= out.count &- at, "RESP encoding passed its reservation")
        guard let source = bytes.baseAddress, let target = out.baseAddress else { return }
        (target + at).copyMemory(from: source, byteCount: bytes.count)
        at &+= bytes.count
    }

    private static func writeCRLF(into out: UnsafeMutableRawBufferPointer, at: inout Int) {
        precondition(2 <= out.count &- at, "RESP encoding passed its reservation")
        out[at] = 13
        out[at &+ 1] = 10
        at &+= 2
    }

    private static func writeLine(
        _ marker: UInt8, _ number: Int, into out: UnsafeMutableRawBufferPointer, at: inout Int
    ) {
        let digits = digitCount(number.magnitude)
        precondition(digits &+ 3 <= out.count &- at, "RESP encoding passed its reservation")
        out[at] = marker
        var value = UInt(number.magnitude)
        var position = at &+ digits
        repeat {
            out[position] = UInt8(ascii: "0") &+ UInt8(value % 10)
            value /= 10
            position &-= 1
        } while value > 0
        at &+= 1 &+ digits
        writeCRLF(into: out, at: &at)
    }
}
