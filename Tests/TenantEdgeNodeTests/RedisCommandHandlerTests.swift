import NIOCore
import NIOEmbedded
import NIOPosix
import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// The shared tier's Redis protocol on a channel: `RedisCommandHandler` on `EmbeddedChannel` (what
/// it writes, how replies meet their commands, what it does with a hostile stream), and
/// `RedisLoopConnection` against a real redis-server.
@Suite("Redis connections on the event loops")
struct RedisCommandHandlerTests {
    /// What each completion received, in the order they ran: `tag=text` for a bulk string, the
    /// reply itself for anything else, `tag failed` for an error.
    final class Replies {
        var seen: [String] = []
        var replies: [RedisConnection.Reply] = []
        func record(_ tag: String) -> RedisCommand.Completion {
            { reply in
                switch reply {
                case .success(let reply):
                    self.replies.append(reply)
                    if case .string(let bytes) = reply {
                        self.seen.append("\(tag)=\(String(decoding: bytes, as: UTF8.self))")
                    } else {
                        self.seen.append("\(tag) answered")
                    }
                case .failure: self.seen.append("\(tag) failed")
                }
            }
        }
    }

    static func handler(maxReplyBytes: Int = 1 << 20, maxInFlight: Int = 100, maxWaitingBytes: Int = 1 << 20) throws
        -> RedisCommandHandler
    {
        RedisCommandHandler(
            reader: try RedisReplyReader(maxBufferedBytes: maxReplyBytes), maxInFlight: maxInFlight,
            maxReplyBytes: maxReplyBytes, maxWaitingBytes: maxWaitingBytes)
    }

    static func channel(maxReplyBytes: Int = 1 << 20, maxInFlight: Int = 100, maxWaitingBytes: Int = 1 << 20) throws
        -> EmbeddedChannel
    {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            handler(maxReplyBytes: maxReplyBytes, maxInFlight: maxInFlight, maxWaitingBytes: maxWaitingBytes))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        return channel
    }

    static func send(_ channel: EmbeddedChannel, _ arguments: [String], _ completion: @escaping RedisCommand.Completion)
    {
        channel.write(RedisCommand(arguments: arguments.map { Array($0.utf8) }, completion: completion), promise: nil)
    }

    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    @Test func commandsAreWrittenAsRESPAndRepliesMeetThemInOrderWhateverTheReads() throws {
        let channel = try Self.channel()
        let replies = Replies()
        Self.send(channel, ["MGET", "te:a:g0:k", ""], replies.record("first"))
        Self.send(channel, ["PING"], replies.record("second"))
        channel.flush()
        #expect(try Self.written(channel) == "*3\r\n$4\r\nMGET\r\n$9\r\nte:a:g0:k\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n")
        // An array with a bulk string that holds CRLF, then a status, one byte per read.
        for byte in Array("*2\r\n$4\r\na\r\nb\r\n$-1\r\n+PONG\r\n".utf8) {
            var buffer = channel.allocator.buffer(capacity: 1)
            buffer.writeInteger(byte)
            try channel.writeInbound(buffer)
        }
        #expect(replies.seen == ["first answered", "second answered"])
        #expect(replies.replies == [.array([.string(Array("a\r\nb".utf8)), .null]), .status("PONG")])
        #expect(channel.isActive)
    }

    /// Lengths of every digit count around the powers of ten, laid into one reservation, read back
    /// as RESP built the slow way; whatever the buffer held before stays in front of it.
    @Test func argumentsOfEveryLengthAreEncodedExactly() {
        let lengths = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 12345, 100_000]
        let arguments = lengths.map { length in (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 13) } }
        var expected = Array("prefix*\(arguments.count)\r\n".utf8)
        for argument in arguments { expected += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
        var buffer = ByteBufferAllocator().buffer(capacity: 3)
        buffer.writeString("prefix")
        RedisCommandHandler.encode(arguments, into: &buffer)
        #expect(buffer.readBytes(length: buffer.readableBytes) == expected)
        #expect(RedisCommandHandler.encodedSize(arguments) >= expected.count - 6)
        var empty = ByteBufferAllocator().buffer(capacity: 0)
        RedisCommandHandler.encode([], into: &empty)
        #expect(empty.readString(length: empty.readableBytes) == "*0\r\n")
    }

    /// Bulk strings are copied once, into a list the reader keeps in the order hiredis makes them,
    /// and matched back to the reply by walking it: nested arrays, nils, integers, statuses and
    /// empty strings must come back in their places, whatever the reads, one reply after another.
    @Test func bulkStringsComeBackInTheirPlacesInNestedRepliesSplitAnywhere() throws {
        let wire = Array(
            ("*4\r\n$1\r\na\r\n*3\r\n$0\r\n\r\n$-1\r\n*2\r\n:7\r\n$2\r\nbc\r\n+OK\r\n$3\r\ndef\r\n"
                + "$4\r\nlast\r\n-ERR no\r\n").utf8)
        let expected: [RedisConnection.Reply] = [
            .array([
                .string(Array("a".utf8)),
                .array([.string([]), .null, .array([.integer(7), .string(Array("bc".utf8))])]),
                .status("OK"), .string(Array("def".utf8)),
            ]),
            .string(Array("last".utf8)), .error("ERR no"),
        ]
        for split in [1, 2, 3, 5, 7, 64] {
            let reader = try RedisReplyReader(maxBufferedBytes: 1 << 20)
            var replies: [RedisConnection.Reply] = []
            var start = 0
            while start < wire.count {
                let end = min(wire.count, start + split)
                try wire[start..<end].withUnsafeBytes { try reader.feed($0) }
                while let reply = try reader.next() { replies.append(reply) }
                start = end
            }
            #expect(replies == expected, "read \(split) bytes at a time")
        }
        // A reply that turns out malformed after some of its strings were read: an error (the
        // connection is then closed, and its reader with it).
        let reader = try RedisReplyReader(maxBufferedBytes: 1 << 20)
        try Array("*2\r\n$2\r\nxy\r\n".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == nil)
        try Array("?bad\r\n".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(throws: EdgeError.self) { _ = try reader.next() }
    }

    @Test func aReplyNoCommandAskedForClosesTheConnectionAndFailsWhatComesAfter() throws {
        let channel = try Self.channel()
        let replies = Replies()
        Self.send(channel, ["PING"], replies.record("asked"))
        try channel.writeInbound(ByteBuffer(string: "+PONG\r\n+EXTRA\r\n"))
        #expect(replies.replies == [.status("PONG")])
        #expect(!channel.isActive)
        Self.send(channel, ["PING"], replies.record("later"))
        #expect(replies.seen.last == "later failed")
    }

    @Test func bytesThatAreNotRESPFailEveryWaitingCommand() throws {
        let channel = try Self.channel()
        let replies = Replies()
        Self.send(channel, ["GET", "a"], replies.record("one"))
        Self.send(channel, ["GET", "b"], replies.record("two"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"))
        #expect(replies.seen == ["one failed", "two failed"])
        #expect(!channel.isActive)
    }

    @Test func aReplyPastTheBoundFailsInsteadOfGrowing() throws {
        let channel = try Self.channel(maxReplyBytes: 1024)
        let replies = Replies()
        Self.send(channel, ["GET", "a"], replies.record("big"))
        // Announces 1 GiB and sends it in pieces: refused once what waits passes 1 KiB.
        try channel.writeInbound(ByteBuffer(string: "$1073741824\r\n"))
        #expect(replies.seen.isEmpty, "an unfinished reply waits")
        try channel.writeInbound(ByteBuffer(string: String(repeating: "x", count: 1100)))
        #expect(replies.seen == ["big failed"])
        #expect(!channel.isActive)
    }

    @Test func commandsBeyondTheInFlightBoundFailAtOnceAndTheRestKeepTheirReplies() throws {
        let channel = try Self.channel(maxInFlight: 2)
        let replies = Replies()
        for tag in ["a", "b", "c"] { Self.send(channel, ["GET", tag], replies.record(tag)) }
        #expect(replies.seen == ["c failed"])
        try channel.writeInbound(ByteBuffer(string: "$1\r\nA\r\n$1\r\nB\r\n"))
        #expect(replies.seen == ["c failed", "a=A", "b=B"])
        #expect(channel.isActive)
    }

    @Test func aLostConnectionFailsWaitingCommands() throws {
        let channel = try Self.channel()
        let replies = Replies()
        Self.send(channel, ["GET", "a"], replies.record("a"))
        channel.pipeline.fireChannelInactive()
        #expect(replies.seen == ["a failed"])
    }

    @Test func aStalledConnectionIsToldFromASlowOne() throws {
        let handler = try Self.handler()
        let channel = EmbeddedChannel(handler: handler)
        let wait = TimeAmount.milliseconds(50)
        #expect(!handler.isStalled(after: wait, now: NIODeadline.now() + .seconds(1)), "nothing waits")
        Self.send(channel, ["GET", "a"], { _ in })
        #expect(handler.isStalled(after: wait, now: NIODeadline.now() + .seconds(1)))
        #expect(!handler.isStalled(after: wait, now: NIODeadline.now()))
    }

    @Test func anArrayWhoseElementsTogetherPassTheBoundFailsToo() throws {
        // Each element is small and parsed as it comes: the bound counts all of the reply's bytes.
        let channel = try Self.channel(maxReplyBytes: 4096)
        let replies = Replies()
        Self.send(channel, ["MGET", "a"], replies.record("many"))
        try channel.writeInbound(ByteBuffer(string: "*1000\r\n"))
        for _ in 0..<5 {
            guard channel.isActive else { break }
            try channel.writeInbound(ByteBuffer(string: "$1000\r\n" + String(repeating: "y", count: 1000) + "\r\n"))
        }
        #expect(replies.seen == ["many failed"])
        #expect(!channel.isActive)
    }

    @Test func anArrayHeaderAnnouncingMillionsOfElementsIsRefusedBeforeItIsAllocated() throws {
        let channel = try Self.channel()
        let replies = Replies()
        Self.send(channel, ["MGET", "a"], replies.record("huge"))
        try channel.writeInbound(ByteBuffer(string: "*2147483000\r\n"))
        #expect(replies.seen == ["huge failed"])
        #expect(!channel.isActive)
    }

    @Test func commandsPastTheWaitingBytesFailAloneAndTheOthersGoOn() throws {
        let channel = try Self.channel(maxWaitingBytes: 300)
        let replies = Replies()
        Self.send(channel, ["SET", "a", String(repeating: "v", count: 200)], replies.record("first"))
        Self.send(channel, ["SET", "b", String(repeating: "v", count: 200)], replies.record("second"))
        #expect(replies.seen == ["second failed"], "its bytes would pass what may wait")
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        #expect(replies.seen == ["second failed", "first answered"])
        Self.send(channel, ["SET", "c", String(repeating: "v", count: 200)], replies.record("third"))
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        #expect(replies.seen.last == "third answered", "the first's bytes were given back with its reply")
    }

    @Test func aSubscribedConnectionPassesMessagesOnAndStillRefusesGarbage() throws {
        let handler = try Self.handler()
        let channel = EmbeddedChannel(handler: handler)
        var pushed: [RedisConnection.Reply] = []
        handler.onPush = { pushed.append($0) }
        let replies = Replies()
        Self.send(channel, ["SUBSCRIBE", "+switch-master"], replies.record("subscribe"))
        try channel.writeInbound(
            ByteBuffer(
                string: "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
                    + "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$5\r\nm a 1\r\n"))
        #expect(replies.seen == ["subscribe answered"])
        #expect(pushed.count == 1)
        try channel.writeInbound(ByteBuffer(string: "not resp\r\n"))
        #expect(!channel.isActive)
    }

    // MARK: against redis-server

    @Test func aLoopConnectionAuthenticatesPipelinesAndNeverNamesThePassword() async throws {
        let server = try RedisProcess()
        let admin = try RedisConnection(host: "127.0.0.1", port: server.port, timeoutMs: 1000)
        #expect(try admin.command("ACL", "SETUSER", "tier", "on", ">s3cret-pass", "~*", "+@all") == .status("OK"))
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        var wrong = try #require(RedisEndpoint(parsing: "redis://tier:not-it@127.0.0.1:\(server.port)/0"))
        let refused = await #expect(throws: EdgeError.self) {
            try await RedisLoopConnection.open(wrong, timeoutMs: 1000, maxReplyBytes: 1 << 20, on: loop).get()
        }
        #expect(refused?.message.contains("refused the credentials") == true)
        #expect(refused?.message.contains("not-it") == false)

        wrong.password = "s3cret-pass"
        wrong.database = 3
        let connection = try await RedisLoopConnection.open(wrong, timeoutMs: 1000, maxReplyBytes: 1 << 20, on: loop)
            .get()
        let answers = try await loop.flatSubmit { () -> EventLoopFuture<[String]> in
            // 200 commands written in one turn of the loop: one flush, answered in order.
            let promise = loop.makePromise(of: [String].self)
            var seen: [String] = []
            for index in 0..<200 {
                connection.submit([Array("ECHO".utf8), Array("v\(index)".utf8)]) { reply in
                    if case .success(.string(let bytes)) = reply { seen.append(String(decoding: bytes, as: UTF8.self)) }
                    if index == 199 { promise.succeed(seen) }
                }
            }
            return promise.futureResult
        }.get()
        #expect(answers == (0..<200).map { "v\($0)" })
        guard case .string(let clients) = try admin.command("CLIENT", "LIST") else {
            throw EdgeError(.redisFailure, "")
        }
        let lines = String(decoding: clients, as: UTF8.self).split(separator: "\n")
        #expect(lines.contains { $0.contains("db=3") && $0.contains("user=tier") }, "authenticated and selected")
        connection.close()
        withExtendedLifetime(server) {}
    }

    @Test func aServerThatNeverAnswersTimesTheHandshakeOut() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(silent.localAddress?.port)
        let endpoint = try #require(RedisEndpoint(parsing: "redis://127.0.0.1:\(port)/0"))
        let started = NIODeadline.now()
        await #expect(throws: EdgeError.self) {
            try await RedisLoopConnection.open(
                endpoint, timeoutMs: 200, maxReplyBytes: 1024, on: MultiThreadedEventLoopGroup.singleton.next()
            ).get()
        }
        // Without the handshake's timeout the open would never end: the bound only tells an end from
        // none. It leaves room for a sanitizer build on a loaded machine (in whole-suite runs on the
        // shared event loops: 2.97 s under AddressSanitizer, 7.7 s once under ThreadSanitizer).
        #expect(NIODeadline.now() - started < .seconds(30))
        try await silent.close()
    }
}
