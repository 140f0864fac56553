import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative
import TenantEdgeNode

/// A real edge node on loopback ports, in front of a `TestUpstream`, with a manual clock, a generated
/// master key and admin tokens. Tenants: `acme` (api.acme.test) and `globex` (api.globex.test),
/// both on the same upstream unless a test says otherwise.
package final class EdgeHarness: Sendable {
    package static let adminToken = "test-admin-token"
    package static let acmePurgeToken = "acme-purge-token"
    /// Read and config scopes, for acme only: what a tenant-scoped operator holds.
    package static let acmeReadToken = "acme-read-token"

    package let upstream: TestUpstream
    package let node: EdgeNode
    package let clock: ManualCacheClock
    package let client: HTTPClient
    package let directory: URL

    /// `logs`: when given, the node logs at `trace` into it (tests that grep logs for secrets).
    /// `nodeClock`: the clock the node runs on, made from the harness's manual clock (default: that clock).
    package static func start(
        configure: (inout EdgeConfig) -> Void = { _ in }, masterKey: [UInt8]? = nil, nodeID: String = "test-a",
        logs: LogCapture? = nil, running: Bool = true,
        nodeClock: ((ManualCacheClock) -> any CacheClock)? = nil, script: @escaping TestUpstream.Script
    ) async throws -> EdgeHarness {
        let upstream = try await TestUpstream(script: script)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("te-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let masterKeyFile = directory.appendingPathComponent("master.key")
        try Data(try masterKey ?? OpenSSL.randomBytes(32)).write(to: masterKeyFile)
        let tokens = directory.appendingPathComponent("admin-tokens.yaml")
        func hex(_ token: String) -> String { Hex.encode(OpenSSL.sha256(Array(token.utf8))) }
        try """
        - {sha256: "\(hex(adminToken))", scopes: [admin], tenants: ["*"]}
        - {sha256: "\(hex(acmePurgeToken))", scopes: [purge], tenants: [acme]}
        - {sha256: "\(hex(acmeReadToken))", scopes: [read, config], tenants: [acme]}
        """.write(to: tokens, atomically: true, encoding: .utf8)

        var config = EdgeConfig()
        config.node = .init(id: nodeID, region: "eu-west")
        config.listen = .init(http: "127.0.0.1:0", admin: "127.0.0.1:0")
        config.stateDir = directory.path
        config.security.masterKeyFile = masterKeyFile.path
        config.security.adminTokensFile = tokens.path
        config.cache.memoryBytes = 64 << 20
        config.limits.upstreamReadTimeoutMs = 2000
        config.limits.drainSeconds = 5
        config.tenants = [
            TenantConfig(id: "acme", hosts: ["api.acme.test"], upstream: upstream.url),
            TenantConfig(id: "globex", hosts: ["api.globex.test"], upstream: upstream.url),
        ]
        configure(&config)
        let problems = config.validate()
        guard problems.isEmpty else {
            throw EdgeError(.invalidConfig, problems.map(\.description).joined(separator: "; "))
        }

        let clock = ManualCacheClock(Date().timeIntervalSince1970)
        var logger = logs.map { capture in Logger(label: "test") { _ in capture.handler() } } ?? Logger(label: "test")
        logger.logLevel = logs == nil ? .critical : .trace
        // `TE_TEST_NODE_LOG=debug` (any level) prints every node's log on stderr: to see why a test failed.
        if logs == nil,
            let level = ProcessInfo.processInfo.environment["TE_TEST_NODE_LOG"].flatMap({ Logger.Level(rawValue: $0) })
        {
            logger = Logger(label: "node \(nodeID)") { label in StreamLogHandler.standardError(label: label) }
            logger.logLevel = level
        }
        let node = try await EdgeNode.start(
            config: config, group: MultiThreadedEventLoopGroup.singleton, logger: logger,
            clock: nodeClock?(clock) ?? clock)
        if running { Task { try? await node.run() } }  // its services, until `shutdown` drains them
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow  // redirects are what some tests look at
        clientConfiguration.connectionPool = .init(
            idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        return EdgeHarness(upstream: upstream, node: node, clock: clock, client: client, directory: directory)
    }

    private init(upstream: TestUpstream, node: EdgeNode, clock: ManualCacheClock, client: HTTPClient, directory: URL) {
        self.upstream = upstream
        self.node = node
        self.clock = clock
        self.client = client
        self.directory = directory
    }

    package struct Response: Sendable {
        package var status: Int
        package var headers: HTTPHeaders
        package var body: String
        package var cacheStatus: String { headers.first(name: "cache-status") ?? "" }
    }

    package func request(
        _ method: HTTPMethod = .GET, host: String = "api.acme.test", _ path: String, headers: [(String, String)] = [],
        body: String? = nil, admin: Bool = false
    ) async throws -> Response {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(admin ? node.adminPort : node.trafficPort)\(path)")
        request.method = method
        request.headers.add(name: "Host", value: host)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 32 << 20)
        return Response(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    package func get(_ path: String, host: String = "api.acme.test", headers: [(String, String)] = []) async throws
        -> Response
    {
        try await request(.GET, host: host, path, headers: headers)
    }

    package func admin(
        _ method: HTTPMethod, _ path: String, token: String? = EdgeHarness.adminToken, body: String? = nil
    ) async throws -> Response {
        try await request(
            method, host: "127.0.0.1", path, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [],
            body: body, admin: true)
    }

    package var runtime: EdgeRuntime { node.runtime }

    package func shutdown() async {
        try? await client.shutdown()
        await node.drain()
        await upstream.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` against a fresh harness and always shuts it down.
package func withEdge(
    configure: (inout EdgeConfig) -> Void = { _ in }, script: @escaping TestUpstream.Script,
    _ body: (EdgeHarness) async throws -> Void
) async throws {
    let harness = try await EdgeHarness.start(configure: configure, script: script)
    do {
        try await body(harness)
    } catch {
        await harness.shutdown()
        throw error
    }
    await harness.shutdown()
}

/// Collects every log line (message and metadata) of a node.
package final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    package init() {}
    package var text: String { lines.withLock { $0.joined(separator: "\n") } }

    package func handler() -> any LogHandler { Handler(capture: self) }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(
            level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
            function: String, line: UInt
        ) {
            let all = self.metadata.merging(metadata ?? [:]) { $1 }
            capture.lines.withLock { $0.append("\(level) \(message) \(all)") }
        }
    }
}

extension EdgeHarness {
    /// Two nodes of one region (the same tenant keys), `node-a` and `node-b`, configured alike; both
    /// are shut down when `body` ends, whether it returned or threw.
    package static func withTwoNodes(
        configure: @escaping (inout EdgeConfig) -> Void, script: @escaping TestUpstream.Script,
        _ body: (EdgeHarness, EdgeHarness) async throws -> Void
    ) async throws {
        let masterKey = try OpenSSL.randomBytes(32)
        let a = try await start(configure: configure, masterKey: masterKey, nodeID: "node-a", script: script)
        let b: EdgeHarness
        do { b = try await start(configure: configure, masterKey: masterKey, nodeID: "node-b", script: script) } catch {
            await a.shutdown()
            throw error
        }
        do { try await body(a, b) } catch {
            await a.shutdown()
            await b.shutdown()
            throw error
        }
        await a.shutdown()
        await b.shutdown()
    }
}
