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
        if endpoint.database != 0, case .error(let message) = try connection.command("SELECT", String(endpoint.database)) {
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
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = arguments.map(\.count)
        let storage = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: bytes.count) }
            }
            return buffer
        }
        defer { storage.forEach { $0.deallocate() } }
        pointers = storage.map { UnsafePointer($0) }
        let raw = pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeMutableBufferPointer { argvlen in
                redisCommandArgv(context, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
            }
        }
        guard let raw else { throw EdgeError(.redisFailure, "Redis command failed: \(Self.errorString(context))") }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    public func command(_ arguments: String...) throws(EdgeError) -> Reply {
        try command(arguments.map { Array($0.utf8) })
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> Reply {
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
            return .array((0..<value.elements).compactMap { value.element[$0].map(convert) })
        default: return .null
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
