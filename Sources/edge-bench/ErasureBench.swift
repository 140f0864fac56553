import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative
import TenantEdgeNode
import TenantEdgeOrigin

/// `edge-bench erasure CERT KEY CA REDIS_PORT [ENTRIES]`: an origin and two nodes sharing Redis,
/// ENTRIES entries of one tenant in node A's L1 and in L2 (and a second tenant that must survive),
/// then `DELETE /v1/tenants/<id>` and a publish, timed until both nodes have confirmed the erasure.
/// Prints the time, the process CPU and Redis CPU spent meanwhile, and node memory before and after.
enum ErasureBench {
    static func run(_ arguments: [String]) async throws {
        guard arguments.count >= 6, let redisPort = Int(arguments[5]) else { EdgeBench.usage() }
        let (cert, key, ca) = (arguments[2], arguments[3], arguments[4])
        let entries = arguments.count > 6 ? Int(arguments[6]) ?? 100_000 : 100_000
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("te-erase-bench-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let signing = try Ed25519Key.generate()
        try Data(try signing.privatePEM()).write(to: URL(fileURLWithPath: work + "/signing.key"))
        try Data(try signing.publicPEM()).write(to: URL(fileURLWithPath: work + "/signing.pub"))
        try Data(try OpenSSL.randomBytes(32)).write(to: URL(fileURLWithPath: work + "/region.kek"))
        try Data("admin".utf8).write(to: URL(fileURLWithPath: work + "/admin.token"))
        try Data("node".utf8).write(to: URL(fileURLWithPath: work + "/node.token"))
        let upstream = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(FixedUpstream()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let upstreamURL = "http://127.0.0.1:\(upstream.localAddress!.port!)"

        // Origin (bound first so nodes know its URL), nodes, then the origin's view of the nodes.
        var originConfig = OriginConfig()
        (originConfig.listen, originConfig.certFile, originConfig.keyFile) = ("127.0.0.1:0", cert, key)
        originConfig.stateDir = work + "/origin"
        originConfig.signingKeyFile = work + "/signing.key"
        originConfig.tokens.admin = [OpenSSL.sha256(Array("admin".utf8))]
        originConfig.tokens.nodes = [(OpenSSL.sha256(Array("node".utf8)), "eu-west", nil)]
        var nodes: [EdgeNode] = []
        let probe = try await OriginServer.start(config: placeholderRegion(originConfig), group: group, logger: logger)
        let originPort = probe.port
        await probe.stop()
        try Data(
            "- {sha256: \"\(Hex.encode(OpenSSL.sha256(Array("admin".utf8))))\", scopes: [admin], tenants: [\"*\"]}\n"
                .utf8
        )
        .write(to: URL(fileURLWithPath: work + "/tokens.yaml"))
        for name in ["a", "b"] {
            var config = EdgeConfig()
            config.node = .init(id: "bench-\(name)", region: "eu-west")
            config.listen = .init(http: "127.0.0.1:0", admin: "127.0.0.1:0")
            config.stateDir = work + "/node-\(name)"
            config.cache.memoryBytes = 1 << 30
            config.cache.redis = .init(url: "redis://127.0.0.1:\(redisPort)/13", poolSize: 2, timeoutMs: 2000)
            config.security.kekFile = work + "/region.kek"
            config.security.configPublicKey = work + "/signing.pub"
            config.security.adminTokensFile = work + "/tokens.yaml"
            var follow = EdgeConfig.Origin(url: "https://127.0.0.1:\(originPort)")
            (follow.caFile, follow.tokenFile) = (ca, work + "/node.token")
            config.origin = follow
            let node = try await EdgeNode.start(config: config, group: group, logger: logger)
            Task { try? await node.run() }
            nodes.append(node)
        }
        originConfig.listen = "127.0.0.1:\(originPort)"
        originConfig.regions = [
            .init(
                region: RegionConfig(name: "eu-west", lat: 53.3, lon: -6.3, publicURL: "https://eu-west.test"),
                kekFile: work + "/region.kek",
                nodes: nodes.enumerated().map {
                    .init(
                        id: "bench-\(["a", "b"][$0.offset])", adminURL: "http://127.0.0.1:\($0.element.adminPort)",
                        adminTokenFile: work + "/admin.token")
                })
        ]
        let origin = try await OriginServer.start(config: originConfig, group: group, logger: logger)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        clientConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: clientConfiguration)
        @Sendable func call(_ method: HTTPMethod, _ url: String, body: String? = nil, host: String? = nil) async throws
            -> String
        {
            var request = HTTPClientRequest(url: url)
            request.method = method
            if let host {
                request.headers.add(name: "Host", value: host)
            } else {
                request.headers.add(name: "Authorization", value: "Bearer admin")
            }
            if let body { request.body = .bytes(ByteBuffer(string: body)) }
            let response = try await client.execute(request, timeout: .seconds(60))
            return String(buffer: try await response.body.collect(upTo: 1 << 20))
        }
        let originURL = "https://127.0.0.1:\(originPort)"
        for tenant in ["doomed", "kept"] {
            _ = try await call(
                .PUT, "\(originURL)/v1/tenants/\(tenant)",
                body: #"{"hosts":["api.\#(tenant).test"],"upstream":"\#(upstreamURL)"}"#)
        }
        let pushed = try await call(.POST, "\(originURL)/v1/config/publish")
        guard pushed.contains(#""bench-a":"ok","bench-b":"ok""#) else {
            throw EdgeError(.transferFailure, "publish: \(pushed)")
        }
        // Fill: ENTRIES entries of the doomed tenant through node A (L1 and L2), 1,000 of the kept one.
        let traffic = "http://127.0.0.1:\(nodes[0].trafficPort)"
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for worker in 0..<64 {
                tasks.addTask {
                    for index in stride(from: worker, to: entries, by: 64) {
                        _ = try await call(.GET, "\(traffic)/item/\(index)", host: "api.doomed.test")
                    }
                    for index in stride(from: worker, to: 1000, by: 64) {
                        _ = try await call(.GET, "\(traffic)/item/\(index)", host: "api.kept.test")
                    }
                }
            }
            try await tasks.waitForAll()
        }
        try await Task.sleep(for: .seconds(2))  // L2 writes land
        let redis = try RedisConnection(host: "127.0.0.1", port: redisPort, timeoutMs: 5000)
        _ = try redis.command("SELECT", "13")
        func redisKeys(_ tenant: String) throws -> Int {
            guard case .array(let items) = try redis.command("KEYS", "te:\(tenant):g*") else { return 0 }
            return items.count
        }
        func redisCPU() throws -> Double {
            guard case .string(let info) = try redis.command("INFO", "cpu") else { return 0 }
            return String(decoding: info, as: UTF8.self).split(separator: "\r\n").reduce(0) { total, line in
                let parts = line.split(separator: ":")
                return parts.count == 2 && (parts[0] == "used_cpu_sys" || parts[0] == "used_cpu_user")
                    ? total + (Double(parts[1]) ?? 0) : total
            }
        }
        let doomedBefore = try redisKeys("doomed")
        let keptBefore = try redisKeys("kept")
        let rssBefore = residentMB()
        let cpuBefore = processCPU()
        let redisBefore = try redisCPU()
        let started = ContinuousClock.now
        _ = try await call(.DELETE, "\(originURL)/v1/tenants/doomed")
        _ = try await call(.POST, "\(originURL)/v1/config/publish")
        while true {
            let record = try await call(.GET, "\(originURL)/v1/erasures/doomed")
            if record.contains(#""bench-a""#) && record.contains(#""bench-b""#) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let elapsed = ContinuousClock.now - started
        let cpu = processCPU() - cpuBefore
        let redisSpent = try redisCPU() - redisBefore
        print("## Erasure: \(entries) entries of one tenant in node A's L1 and in Redis, two nodes\n")
        print("| | value |")
        print("|---|---|")
        print(
            String(
                format: "| erase + publish → both nodes confirmed | %.0f ms |",
                FeedPropagationBench.milliseconds(elapsed)))
        print("| tenant's Redis keys before → after | \(doomedBefore) → \(try redisKeys("doomed")) |")
        print("| other tenant's Redis keys before → after | \(keptBefore) → \(try redisKeys("kept")) |")
        print(String(format: "| CPU of the bench process (origin, nodes) during it | %.2f s |", cpu))
        print(String(format: "| CPU of redis-server during it | %.2f s |", redisSpent))
        print(String(format: "| resident memory before → after | %.0f → %.0f MB |\n", rssBefore, residentMB()))
        for node in nodes { await node.drain() }
        await origin.stop()
        try await client.shutdown()
        try await upstream.close()
        try await group.shutdownGracefully()
    }

    private static func placeholderRegion(_ config: OriginConfig) -> OriginConfig {
        var config = config
        config.stateDir += "-probe"
        return config
    }

    static func processCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(
            usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func residentMB() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}

/// The bench's upstream: 200 bytes, cacheable for an hour, for every GET.
private final class FixedUpstream: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Cache-Control", value: "max-age=3600")
        headers.add(name: "Content-Length", value: "200")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: 0x78, count: 200)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
