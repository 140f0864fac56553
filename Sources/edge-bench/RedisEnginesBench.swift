import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// `edge-bench redis-engines PORT [SECONDS] [CONCURRENCY] [ROUNDS]`: the choice issue 3 asked for,
/// a pool of blocking hiredis connections on their own threads against hiredis's async API on a
/// poll loop of our own. Both are driven the way the node drives L2: CONCURRENCY requests in
/// flight on two NIO event loops, each waiting for one 1 KiB GET and then asking the next, for
/// SECONDS per run; engines run interleaved ROUNDS times. Prints calls per second per run.
enum RedisEnginesBench {
    static func run(_ arguments: [String]) throws {
        guard arguments.count >= 3, let port = Int(arguments[2]) else { EdgeBench.usage() }
        let seconds = arguments.count > 3 ? Double(arguments[3]) ?? 4 : 4
        let concurrency = arguments.count > 4 ? Int(arguments[4]) ?? 64 : 64
        let rounds = arguments.count > 5 ? Int(arguments[5]) ?? 2 : 2
        let keys = 1000
        let setup = try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 5000)
        _ = try setup.pipeline(
            (0..<keys).map { [Array("SET".utf8), Array("te:bench:\($0)".utf8), [UInt8](repeating: 0x61, count: 1024)] })
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let engines: [(String, () throws -> any RedisEngine)] = [
            ("blocking-pool-2", { try BlockingPoolEngine(port: port, threads: 2) }),
            ("blocking-pool-8", { try BlockingPoolEngine(port: port, threads: 8) }),
            ("async-1-connection", { try AsyncEngine(port: port, connections: 1) }),
            ("async-2-connections", { try AsyncEngine(port: port, connections: 2) }),
        ]
        for round in 1...rounds {
            for (name, make) in engines {
                let engine = try make()
                let rate = try drive(engine, group: group, seconds: seconds, concurrency: concurrency, keys: keys)
                engine.close()
                print("\(name) round=\(round) calls_per_s=\(Int(rate))")
            }
        }
    }

    /// Runs `concurrency` request loops until `seconds` pass; calls per second over all of them.
    private static func drive(
        _ engine: any RedisEngine, group: MultiThreadedEventLoopGroup, seconds: Double, concurrency: Int,
        keys: Int
    ) throws -> Double {
        let completed = Counter()
        let started = NIODeadline.now()
        let end = started + .milliseconds(Int64(seconds * 1000))
        let loops = (0..<concurrency).map { index -> EventLoopFuture<Void> in
            let eventLoop = group.next()
            let done = eventLoop.makePromise(of: Void.self)
            @Sendable func next(_ n: Int) {
                engine.get(key: "te:bench:\((index * 7919 + n) % keys)", on: eventLoop).whenComplete { result in
                    guard case .success(1024) = result else {
                        return done.fail(EdgeError(.redisFailure, "bad reply: \(result)"))
                    }
                    completed.value.add(1, ordering: .relaxed)
                    if NIODeadline.now() < end { next(n + 1) } else { done.succeed() }
                }
            }
            eventLoop.execute { next(0) }
            return done.futureResult
        }
        try EventLoopFuture.andAllSucceed(loops, on: group.next()).wait()
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        return Double(completed.value.load(ordering: .relaxed)) / elapsed
    }

    private final class Counter: Sendable { let value = Atomic<Int>(0) }
}

/// One way of running Redis calls off the event loops; `get` answers the value's length.
protocol RedisEngine: Sendable {
    func get(key: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int>
    func close()
}

/// The node's design: blocking connections, one per thread of an `NIOThreadPool`.
final class BlockingPoolEngine: RedisEngine {
    private let pool: NIOThreadPool
    private let idle: Mutex<[Connection]>
    private final class Connection: @unchecked Sendable {  // used by one pool thread at a time
        let redis: RedisConnection
        init(_ redis: RedisConnection) { self.redis = redis }
    }

    init(port: Int, threads: Int) throws {
        idle = Mutex(
            try (0..<threads).map { _ in Connection(try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 1000))
            })
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    func get(key: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let arguments = [Array("GET".utf8), Array(key.utf8)]
        return pool.runIfActive(eventLoop: eventLoop) {
            guard let connection = self.idle.withLock({ $0.popLast() }) else {
                throw EdgeError(.redisFailure, "no idle connection")
            }
            defer { self.idle.withLock { $0.append(connection) } }
            guard case .string(let value) = try connection.redis.command(arguments) else {
                throw EdgeError(.redisFailure, "GET")
            }
            return value.count
        }
    }

    func close() { try? pool.syncShutdownGracefully() }
}

/// The alternative: hiredis's async API on poll loops of our own, commands spread round-robin.
final class AsyncEngine: RedisEngine {
    private let connections: [RedisAsyncConnection]
    private let next = Atomic<Int>(0)

    init(port: Int, connections: Int) throws {
        self.connections = try (0..<connections).map { _ in try RedisAsyncConnection(host: "127.0.0.1", port: port) }
    }

    func get(key: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let promise = eventLoop.makePromise(of: Int.self)
        let connection = connections[next.add(1, ordering: .relaxed).oldValue % connections.count]
        connection.submit([Array("GET".utf8), Array(key.utf8)]) { result in
            switch result {
            case .success(.string(let value)): promise.succeed(value.count)
            case .success(let other): promise.fail(EdgeError(.redisFailure, "GET answered \(other)"))
            case .failure(let error): promise.fail(error)
            }
        }
        return promise.futureResult
    }

    func close() {}
}
