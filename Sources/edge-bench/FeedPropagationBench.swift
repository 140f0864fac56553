import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeNode
import TenantEdgeOrigin

/// `edge-bench feed-propagation CERT KEY CA [EVENTS] [POSTGRES_URL]`: a real origin (HTTPS) and
/// two edge nodes following its feed, in one process on loopback. Publishes EVENTS purges one at a
/// time and times each from the publish request until each node has applied it (publish includes
/// the store's commit; applying includes the node's purge and its cursor fsync). Then publishes
/// EVENTS more from 8 concurrent publishers and times until both nodes reach the head: events
/// applied per second at saturation. With POSTGRES_URL, the same again with two origin replicas on
/// that database: publishes go to replica A while the nodes follow replica B, so every event crosses
/// PostgreSQL's notification. Prints a Markdown section.
enum FeedPropagationBench {
    struct Setup: Sendable {
        let cert: String, key: String, ca: String, events: Int, work: String
        let group: any EventLoopGroup
        let logger: Logger
    }

    static func run(_ arguments: [String]) async throws {
        guard arguments.count >= 5 else { EdgeBench.usage() }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("te-feed-bench-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let setup = Setup(
            cert: arguments[2], key: arguments[3], ca: arguments[4],
            events: arguments.count > 5 ? Int(arguments[5]) ?? 1000 : 1000, work: work, group: group, logger: logger)
        try Data("node".utf8).write(to: URL(fileURLWithPath: work + "/node.token"))
        try Data(try OpenSSL.randomBytes(32)).write(to: URL(fileURLWithPath: work + "/master.key"))

        print("## Invalidation propagation: origin → 2 nodes over HTTPS long-poll, loopback\n")
        print(
            "\(setup.events) purges published one at a time, timed from the publish request to applied on each "
                + "node; then \(setup.events) from 8 concurrent publishers until both nodes reach the head.\n")
        print(
            "| origin store | publish → applied p50 ms | p99 ms | max ms | publish answered p50 ms | p99 ms "
                + "| saturation: published/s | applied/s |")
        print("|---|---|---|---|---|---|---|---|")
        let embedded = try await measure(setup, label: "embedded (SQLite), 1 origin", storage: .embedded, replicas: 1)
        if arguments.count > 6 {
            var postgres = OriginStorage.Postgres(url: arguments[6])
            postgres.tls = .disable
            _ = try await measure(
                setup, label: "PostgreSQL, 2 replicas (publish to A, nodes on B)", storage: .postgres(postgres),
                replicas: 2)
        }
        print()
        try await fanOut(originURL: embedded.url, ca: setup.ca, group: group, publish: embedded.publish)
        await embedded.stop()
        try? await group.shutdownGracefully()
    }

    /// What `measure` leaves running for the fan-out: the first origin and a publisher to it.
    struct Running: Sendable {
        let url: String
        let publish: @Sendable (Int) async throws -> Int
        let stop: @Sendable () async -> Void
    }

    static func measure(_ setup: Setup, label: String, storage: OriginStorage, replicas: Int) async throws -> Running {
        var origins: [OriginServer] = []
        for index in 0..<replicas {
            var originConfig = OriginConfig()
            originConfig.listen = "127.0.0.1:0"
            (originConfig.certFile, originConfig.keyFile) = (setup.cert, setup.key)
            originConfig.stateDir = setup.work + "/origin-\(label.prefix(3))-\(index)"
            originConfig.storage = storage
            originConfig.regions = [
                .init(region: RegionConfig(name: "eu-west", lat: 53.3, lon: -6.3, publicURL: "https://eu-west.test"))
            ]
            originConfig.tokens.publishers = [(OpenSSL.sha256(Array("pub".utf8)), ["*"])]
            originConfig.tokens.nodes = [(OpenSSL.sha256(Array("node".utf8)), "eu-west", nil)]
            origins.append(try await OriginServer.start(config: originConfig, group: setup.group, logger: setup.logger))
        }
        let publishURL = "https://127.0.0.1:\(origins[0].port)"
        let followURL = "https://127.0.0.1:\(origins[origins.count - 1].port)"

        var nodes: [EdgeNode] = []
        for name in ["a", "b"] {
            var config = EdgeConfig()
            config.node = .init(id: "bench-\(name)", region: "eu-west")
            config.listen = .init(http: "127.0.0.1:0", admin: "127.0.0.1:0")
            config.stateDir = setup.work + "/node-\(name)-\(label.prefix(3))"
            config.security.masterKeyFile = setup.work + "/master.key"
            config.tenants = [TenantConfig(id: "acme", hosts: ["api.acme.test"], upstream: "http://127.0.0.1:1")]
            var follow = EdgeConfig.Origin(url: followURL)
            (follow.caFile, follow.tokenFile) = (setup.ca, setup.work + "/node.token")
            config.origin = follow
            let node = try await EdgeNode.start(config: config, group: setup.group, logger: setup.logger)
            Task { try? await node.run() }
            nodes.append(node)
        }

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(setup.ca)
        let client = HTTPClient(
            eventLoopGroupProvider: .shared(setup.group), configuration: .init(tlsConfiguration: tls))
        @Sendable func publish(_ index: Int) async throws -> Int {
            var request = HTTPClientRequest(url: publishURL + "/v1/invalidations")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer pub")
            request.body = .bytes(ByteBuffer(string: #"{"tenant":"acme","keys":["/item/\#(index)"]}"#))
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = String(buffer: try await response.body.collect(upTo: 1024))
            guard response.status == .ok, let seq = Int(body.filter(\.isNumber)) else {
                throw EdgeError(.transferFailure, "publish: \(body)")
            }
            return seq
        }
        // The nodes' feeds connected before anything is timed.
        let first = try await publish(-1)
        while nodes.contains(where: { $0.invalidationCursor < first }) { try await Task.sleep(for: .milliseconds(5)) }

        // One at a time: latency from publish to applied, per node.
        var latencies: [Double] = []
        var publishTimes: [Double] = []
        for index in 0..<setup.events {
            let started = ContinuousClock.now
            let seq = try await publish(index)
            publishTimes.append(milliseconds(ContinuousClock.now - started))
            var pending = Set(nodes.indices)
            while !pending.isEmpty {
                for node in pending where nodes[node].invalidationCursor >= seq {
                    latencies.append(milliseconds(ContinuousClock.now - started))
                    pending.remove(node)
                }
                if !pending.isEmpty { try await Task.sleep(for: .microseconds(100)) }
            }
        }
        // Saturation: 8 publishers at once, until both nodes reach the head.
        let events = setup.events
        let started = ContinuousClock.now
        let head = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for worker in 0..<8 {
                tasks.addTask {
                    var last = 0
                    for index in stride(from: worker, to: events, by: 8) {
                        last = max(last, try await publish(events + index))
                    }
                    return last
                }
            }
            return try await tasks.reduce(0) { max($0, $1) }
        }
        let published = ContinuousClock.now - started
        while nodes.contains(where: { $0.invalidationCursor < head }) { try await Task.sleep(for: .microseconds(200)) }
        let applied = ContinuousClock.now - started

        latencies.sort()
        publishTimes.sort()
        func percentile(_ values: [Double], _ p: Double) -> Double {
            values[min(values.count - 1, Int(Double(values.count) * p))]
        }
        print(
            String(
                format: "| %@ | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |", label, percentile(latencies, 0.5),
                percentile(latencies, 0.99), latencies.last ?? 0, percentile(publishTimes, 0.5),
                percentile(publishTimes, 0.99), Double(events) / seconds(published),
                Double(events) / seconds(applied)))

        for node in nodes { await node.drain() }
        let stop: @Sendable () async -> Void = { [origins] in
            for origin in origins { await origin.stop() }
            try? await client.shutdown()
        }
        if replicas > 1 {
            await stop()
        }
        return Running(url: publishURL, publish: publish, stop: stop)
    }

    /// Fan-out: 1,000 feed clients (each its own TLS connection, as 1,000 nodes would hold) long-poll
    /// the origin; one event is published and each client's answer is timed. Three rounds.
    static func fanOut(
        originURL: String, ca: String, group: any EventLoopGroup,
        publish: @escaping @Sendable (Int) async throws -> Int
    ) async throws {
        let clients = 1000
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool = .init(
            idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: clients)
        let feedClient = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        print("### Fan-out: \(clients) long-polling feed clients on one origin (one TLS connection each)\n")
        print("| round | last client answered after ms | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        var cursor = try await publish(900_000)
        for round in 1...3 {
            let started = Locked(ContinuousClock.now)
            let times = try await withThrowingTaskGroup(of: Double.self) { tasks -> [Double] in
                for _ in 0..<clients {
                    tasks.addTask { [cursor] in
                        var request = HTTPClientRequest(url: originURL + "/v1/invalidations?after=\(cursor)&wait=30")
                        request.headers.add(name: "Authorization", value: "Bearer node")
                        let response = try await feedClient.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return milliseconds(ContinuousClock.now - started.value)
                    }
                }
                try await Task.sleep(for: .seconds(round == 1 ? 8 : 2))  // every poll connected and waiting
                started.value = ContinuousClock.now
                cursor = try await publish(900_000 + round)
                return try await tasks.reduce(into: []) { $0.append($1) }
            }.sorted()
            print(
                String(
                    format: "| %d | %.1f | %.1f | %.1f |", round, times.last ?? 0, times[times.count / 2],
                    times[times.count * 99 / 100]))
        }
        print()
        try await feedClient.shutdown()
    }

    final class Locked<Value: Sendable>: @unchecked Sendable {  // a start time set once per round before it is read
        private let lock = NSLock()
        private var stored: Value
        init(_ value: Value) { stored = value }
        var value: Value {
            get {
                lock.lock()
                defer { lock.unlock() }
                return stored
            }
            set {
                lock.lock()
                stored = newValue
                lock.unlock()
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Double { seconds(duration) * 1000 }
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
