internal import CHiredis
import TenantEdgeCore

/// One blocking hiredis connection. Owned by a single thread at a time (never an event loop);
/// the context is freed in `deinit`. Commands go through `redisCommandArgv`, binary-safe.
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>

    /// Connects with a timeout; throws `.redisFailure` naming the address, not any credential.
    public init(host: String, port: Int, timeoutMs: Int) throws(EdgeError) {
        let timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        guard let context = redisConnectWithTimeout(host, Int32(port), timeout) else {
            throw EdgeError(.redisFailure, "cannot allocate a Redis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorString(context)
            redisFree(context)
            throw EdgeError(.redisFailure, "cannot connect to Redis at \(host):\(port): \(message)")
        }
        redisSetTimeout(context, timeout)
        self.context = context
    }

    deinit { redisFree(context) }

    /// Connects, authenticates (`AUTH [user] password`) and selects the endpoint's database.
    /// Errors name the endpoint with its password masked.
    public static func open(_ endpoint: RedisEndpoint, timeoutMs: Int) throws(EdgeError) -> RedisConnection {
        let connection = try RedisConnection(host: endpoint.host, port: endpoint.port, timeoutMs: timeoutMs)
        if let password = endpoint.password {
            let arguments = ["AUTH"] + (endpoint.user.map { [$0] } ?? []) + [password]
            if case .error = try connection.command(arguments.map { Array($0.utf8) }) {
                throw EdgeError(.redisFailure, "Redis at \(endpoint) refused the credentials")
            }
        }
        if endpoint.database != 0,
            case .error(let message) = try connection.command("SELECT", String(endpoint.database))
        {
            throw EdgeError(.redisFailure, "Redis at \(endpoint): SELECT failed: \(message)")
        }
        return connection
    }

    /// A Redis reply, copied out of hiredis's memory.
    public enum Reply: Equatable, Sendable {
        case status(String)
        case string([UInt8])
        case integer(Int)
        case array([Reply])
        case null
        case error(String)
    }

    /// Runs one command; arguments are sent as raw bytes.
    public func command(_ arguments: [[UInt8]]) throws(EdgeError) -> Reply {
        let raw = Self.withArgv(arguments) { count, argv, lengths in redisCommandArgv(context, count, argv, lengths) }
        guard let raw else { throw EdgeError(.redisFailure, "Redis command failed: \(Self.errorString(context))") }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends every command before reading any reply (hiredis `redisAppendCommandArgv` then
    /// `redisGetReply`): one round trip for the batch instead of one per command.
    public func pipeline(_ commands: [[[UInt8]]]) throws(EdgeError) -> [Reply] {
        for arguments in commands {
            let status = Self.withArgv(arguments) { count, argv, lengths in
                redisAppendCommandArgv(context, count, argv, lengths)
            }
            guard status == REDIS_OK else {
                throw EdgeError(.redisFailure, "Redis pipeline append failed: \(Self.errorString(context))")
            }
        }
        var replies: [Reply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer? = nil
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw EdgeError(.redisFailure, "Redis pipeline read failed: \(Self.errorString(context))")
            }
            replies.append(Self.convert(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Pins arguments as the `argc`/`argv`/`argvlen` triple hiredis takes, for the closure's duration.
    static func withArgv<T>(
        _ arguments: [[UInt8]],
        _ body: (
            Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>?,
            UnsafePointer<Int>?
        ) -> T
    ) -> T {
        let storage = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress {
                    UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: bytes.count)
                }
            }
            return buffer
        }
        defer { for buffer in storage { buffer.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = storage.map { UnsafePointer($0) }
        let lengths = arguments.map(\.count)
        return pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { argvlen in
                body(Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
            }
        }
    }

    public func command(_ arguments: String...) throws(EdgeError) -> Reply {
        try command(arguments.map { Array($0.utf8) })
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> Reply {
        let value = reply.pointee
        func bytes() -> [UInt8] {
            guard let text = value.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: text, count: value.len))
        }
        switch value.type {
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_INTEGER: return .integer(Int(value.integer))
        case REDIS_REPLY_ARRAY:
            // Sized once (a `compactMap` grew it 1, 2, 4: three allocations for an `MGET` of three).
            // hiredis has parsed and holds every element by now (0 to `Int32.max` of them; the
            // shared tier's reader refuses more than 1,024), so this costs no more than they do.
            let count = max(0, value.elements)
            var items: [Reply] = []
            items.reserveCapacity(count)
            for index in 0..<count {
                if let element = value.element[index] { items.append(convert(element)) }
            }
            return .array(items)
        default: return .null
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
