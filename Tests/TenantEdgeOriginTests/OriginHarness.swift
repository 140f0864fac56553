import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// A real `edge-origin` over HTTPS (certificate from the CA `make test` made), its tokens, and a
/// client that trusts that CA, for publishing.
struct OriginHarness {
    static let publisherToken = "publisher-token-test"
    static let nodeToken = "node-token-eu-west"
    static let boundNodeIDs = ["test-a", "node-a", "node-b", "node-c"]
    static func nodeToken(for id: String) -> String { boundNodeIDs.contains(id) ? "node-token-\(id)" : nodeToken }
    let server: OriginServer
    let stateDir: String
    let client: HTTPClient
    var url: String { "https://127.0.0.1:\(server.port)" }

    /// A value `make test` exports; missing is a failure, never a skip.
    static func environment(_ name: String) throws -> String {
        let value = ProcessInfo.processInfo.environment[name] ?? ""
        try #require(!value.isEmpty, "\(name) is not set: run the suite with `make test`")
        return value
    }

    static func config(stateDir: String, retention: Int = 1000) throws -> OriginConfig {
        var config = OriginConfig()
        config.listen = "127.0.0.1:0"
        config.certFile = try TestEnvironment.require("TE_TEST_SERVER_CERT")
        config.keyFile = try TestEnvironment.require("TE_TEST_SERVER_KEY")
        config.stateDir = stateDir
        config.logRetentionEvents = retention
        config.regions = [
            .init(region: RegionConfig(name: "eu-west", lat: 53.3, lon: -6.3, publicURL: "https://eu-west.test"))
        ]
        config.tokens.publishers = [(OpenSSL.sha256(Array(publisherToken.utf8)), ["*"])]
        // The region's shared token (pulls, feeds) and one token bound to each node id the tests use
        // (erasure confirmations need a node's own).
        config.tokens.nodes =
            [(OpenSSL.sha256(Array(nodeToken.utf8)), "eu-west", nil)]
            + boundNodeIDs.map { (OpenSSL.sha256(Array(nodeToken(for: $0).utf8)), "eu-west", $0) }
        return config
    }

    /// `port`: listen there (an origin restarted where its nodes expect it); 0 picks a free one.
    static func start(
        stateDir: String? = nil, retention: Int = 1000, port: Int = 0,
        configure: (inout OriginConfig) -> Void = { _ in }
    ) async throws -> OriginHarness {
        let directory =
            stateDir
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("te-origin-\(UUID().uuidString)").path
        var logger = Logger(label: "test-origin")
        logger.logLevel = .critical
        var settings = try config(stateDir: directory, retention: retention)
        settings.listen = "127.0.0.1:\(port)"
        configure(&settings)
        let server = try await OriginServer.start(
            config: settings,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(try TestEnvironment.require("TE_TEST_CA_FILE"))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        return OriginHarness(server: server, stateDir: directory, client: client)
    }

    /// Publishes a purge; the origin's `seq`.
    @discardableResult
    func publish(_ body: String, token: String = OriginHarness.publisherToken) async throws -> (
        status: Int, body: String
    ) {
        var request = HTTPClientRequest(url: url + "/v1/invalidations")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }

    /// Calls the origin with a token; status and body.
    func call(_ method: HTTPMethod, _ path: String, token: String, body: String? = nil) async throws -> (
        status: Int, body: String, signature: String?
    ) {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(20))
        let bytes = try await response.body.collect(upTo: 8 << 20)
        return (Int(response.status.code), String(buffer: bytes), response.headers.first(name: "edge-signature"))
    }

    func stop() async {
        await server.stop()
        try? await client.shutdown()
    }

    /// Node settings that follow this origin: token file in `directory`, CA `caFile`.
    func follow(_ config: inout EdgeConfig, directory: String, caFile: String? = nil, pollWait: Int = 2) {
        let tokenFile = directory + "/node.token"
        FileManager.default.createFile(atPath: tokenFile, contents: Data(Self.nodeToken(for: config.node.id).utf8))
        var origin = EdgeConfig.Origin(url: url)
        origin.caFile = caFile ?? ProcessInfo.processInfo.environment["TE_TEST_CA_FILE"]
        origin.tokenFile = tokenFile
        origin.pollWaitSeconds = pollWait
        config.origin = origin
    }
}

extension OriginHarness {
    /// An origin that signs with `secrets`, seals tenant keys under its region KEK, and pushes to
    /// `nodes` (all in eu-west) with their admin token.
    static func start(
        secrets: OriginSecrets, pushingTo nodes: [EdgeHarness], stateDir: String? = nil, port: Int = 0,
        adminToken: String
    ) async throws -> OriginHarness {
        try await start(stateDir: stateDir, port: port) { config in
            config.signingKeyFile = secrets.signingKey
            config.tokens.admin = [OpenSSL.sha256(Array(adminToken.utf8))]
            config.regions[0].kekFile = secrets.regionKEK
            config.regions[0].nodes = nodes.map {
                .init(
                    id: $0.runtime.config.node.id, adminURL: "http://127.0.0.1:\($0.node.adminPort)",
                    adminTokenFile: secrets.nodeAdminToken)
            }
        }
    }
}

extension OriginHarness {
    /// An origin pushing to two nodes (`node-a`, `node-b` of eu-west) that follow it (poll wait 1 s),
    /// all stopped however `body` ends. The origin starts once first so the nodes know its URL, then
    /// again on the same port and state knowing their admin ports; the nodes' feeds back off across
    /// that restart on their clocks, which `body` moves on. `configure` adds to the nodes' settings;
    /// `script` is their upstreams' answer.
    /// The origin started again on `port`, which its nodes know. Between the stop and this start
    /// another test running beside it may bind that port for a moment (it is free, and the kernel
    /// hands free ports to `:0` binds): a start refused with address-in-use is tried again for up to
    /// 10 s (TSan CI on ee136cc met one).
    static func restart(
        secrets: OriginSecrets, pushingTo nodes: [EdgeHarness], stateDir: String, port: Int, adminToken: String
    ) async throws -> OriginHarness {
        var attempts = 0
        while true {
            do {
                return try await OriginHarness.start(
                    secrets: secrets, pushingTo: nodes, stateDir: stateDir, port: port, adminToken: adminToken)
            } catch  where attempts < 40 && "\(error)".contains("Address already in use") {
                attempts += 1
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    static func withFleet(
        adminToken: String, configure: @escaping (inout EdgeConfig) -> Void = { _ in },
        script: @escaping TestUpstream.Script = { _ in .init(body: "x") },
        _ body: (OriginHarness, [EdgeHarness]) async throws -> Void
    ) async throws {
        let secrets = try OriginSecrets("te-fleet")
        let originState = try temporaryDirectory("te-fleet-origin")
        let bootstrap = try await OriginHarness.start(stateDir: originState)
        let port = bootstrap.server.port
        var nodes: [EdgeHarness] = []
        do {
            for id in ["node-a", "node-b"] {
                let state = try temporaryDirectory("te-fleet-\(id)")
                nodes.append(
                    try await EdgeHarness.start(
                        configure: { config in
                            config.stateDir = state
                            config.security.configPublicKey = secrets.publicKey
                            config.security.kekFile = secrets.regionKEK
                            bootstrap.follow(&config, directory: state, pollWait: 1)
                            configure(&config)
                        }, nodeID: id, script: script))
            }
        } catch {
            await bootstrap.stop()
            for node in nodes { await node.shutdown() }
            throw error
        }
        await bootstrap.stop()
        let origin: OriginHarness
        do {
            origin = try await Self.restart(
                secrets: secrets, pushingTo: nodes, stateDir: originState, port: port, adminToken: adminToken)
        } catch {
            for node in nodes { await node.shutdown() }
            throw error
        }
        do { try await body(origin, nodes) } catch {
            await origin.stop()
            for node in nodes { await node.shutdown() }
            throw error
        }
        await origin.stop()
        for node in nodes { await node.shutdown() }
    }
}

/// The secrets an origin and its nodes share in a test, made fresh in a temporary directory:
/// `signing.key`/`signing.pub` (Ed25519), `node-admin.token` (the nodes' admin token, for pushes)
/// and `eu-west.kek` (the region KEK).
struct OriginSecrets {
    let directory: String
    let kek: [UInt8]
    var signingKey: String { directory + "/signing.key" }
    var publicKey: String { directory + "/signing.pub" }
    var nodeAdminToken: String { directory + "/node-admin.token" }
    var regionKEK: String { directory + "/eu-west.kek" }

    init(_ prefix: String) throws {
        directory = try temporaryDirectory(prefix)
        let signing = try Ed25519Key.generate()
        try Data(try signing.privatePEM()).write(to: URL(fileURLWithPath: directory + "/signing.key"))
        try Data(try signing.publicPEM()).write(to: URL(fileURLWithPath: directory + "/signing.pub"))
        try Data(EdgeHarness.adminToken.utf8).write(to: URL(fileURLWithPath: directory + "/node-admin.token"))
        kek = try OpenSSL.randomBytes(32)
        try Data(kek).write(to: URL(fileURLWithPath: directory + "/eu-west.kek"))
    }
}
