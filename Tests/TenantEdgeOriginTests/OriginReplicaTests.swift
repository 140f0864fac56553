import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// Two `edge-origin` processes (the built binary, so one can be killed with SIGKILL) on one
/// PostgreSQL database, and two nodes that list both (`origin.urls`).
@Suite("Origin replicas on PostgreSQL", .serialized)
struct OriginReplicaTests {
    /// One `edge-origin` process with its own config file.
    final class OriginProcess: @unchecked Sendable {  // used from one test task
        let port: Int
        private let process: Process
        var url: String { "https://127.0.0.1:\(port)" }

        init(databaseURL: String, directory: String) throws {
            port = try RedisProcess.freePort()
            func hex(_ token: String) -> String { Hex.encode(OpenSSL.sha256(Array(token.utf8))) }
            let config = directory + "/origin.yaml"
            try """
            listen: "127.0.0.1:\(port)"
            tls: { cert_file: "\(try TestEnvironment.require("TE_TEST_SERVER_CERT"))", \
            key_file: "\(try TestEnvironment.require("TE_TEST_SERVER_KEY"))" }
            state_dir: "\(directory)"
            storage: { postgres: { url: "\(databaseURL)", tls: verify, \
            ca_file: "\(try TestEnvironment.require("TE_TEST_CA_FILE"))", pool_size: 4 } }
            regions: [ { name: eu-west, lat: 53.3, lon: -6.3, public_url: "https://eu-west.test" } ]
            tokens:
              publishers: [ { sha256: "\(hex(OriginHarness.publisherToken))", tenants: ["*"] } ]
              nodes: [ { sha256: "\(hex(OriginHarness.nodeToken))", region: eu-west } ]

            """.write(toFile: config, atomically: true, encoding: .utf8)
            process = Process()
            process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
                .deletingLastPathComponent().appendingPathComponent("edge-origin")
            process.arguments = ["run", "--config", config]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            for _ in 0..<100 {
                if RawHTTP.accepts(port: port) { return }
                usleep(50_000)
            }
            throw TestEnvironment.Unmet("edge-origin did not listen on \(port)")
        }

        /// SIGKILL, as a crash would.
        func kill() {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        deinit { if process.isRunning { kill() } }
    }

    static let script: TestUpstream.Script = { request in
        .init(headers: [("Cache-Control", "max-age=300")], body: "\(request.header("host") ?? "?")|\(request.uri)")
    }

    static func client() throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(try TestEnvironment.require("TE_TEST_CA_FILE"))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    static func publish(_ body: String, to origin: OriginProcess, client: HTTPClient) async throws -> String {
        var request = HTTPClientRequest(url: origin.url + "/v1/invalidations")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(OriginHarness.publisherToken)")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(10))
        return String(buffer: try await response.body.collect(upTo: 1 << 16))
    }

    static func node(_ id: String, following urls: [String]) async throws -> EdgeHarness {
        let state = try temporaryDirectory("te-replica-\(id)")
        let tokenFile = state + "/node.token"
        FileManager.default.createFile(atPath: tokenFile, contents: Data(OriginHarness.nodeToken.utf8))
        return try await EdgeHarness.start(
            configure: { config in
                config.stateDir = state
                var origin = EdgeConfig.Origin(url: "")
                origin.urls = urls
                origin.caFile = ProcessInfo.processInfo.environment["TE_TEST_CA_FILE"]
                origin.tokenFile = tokenFile
                origin.pollWaitSeconds = 60  // long: an event arriving early was woken, not polled for
                config.origin = origin
            }, nodeID: id, script: script)
    }

    static func cursor(_ edge: EdgeHarness) -> Int { edge.runtime.feedStatus.cursor.load(ordering: .relaxed) }

    @Test func aPublishThroughOneReplicaWakesPollsOnTheOtherAndLosingItLosesNoEvent() async throws {
        let database = try await OriginStoreContractTests.freshPostgresDatabase()
        let a = try OriginProcess(databaseURL: database, directory: try temporaryDirectory("te-origin-a"))
        let b = try OriginProcess(databaseURL: database, directory: try temporaryDirectory("te-origin-b"))
        let client = try Self.client()
        // Both nodes poll replica B first.
        let one = try await Self.node("node-a", following: [b.url, a.url])
        let two = try await Self.node("node-b", following: [b.url, a.url])
        defer { withExtendedLifetime((a, b)) {} }
        do {
            for edge in [one, two] {
                _ = try await edge.get("/v1/item?id=1")
                #expect(try await edge.get("/v1/item?id=1").cacheStatus.contains("; hit"))
            }
            // Warm-up: both feeds connected to B and following.
            #expect(try await Self.publish(#"{"tenant":"globex","all":true}"#, to: a, client: client) == #"{"seq":1}"#)
            try await waitUntil(seconds: 10) { Self.cursor(one) == 1 && Self.cursor(two) == 1 }

            // Published through A, polled on B: B's long polls are woken by PostgreSQL's notification.
            #expect(
                try await Self.publish(#"{"tenant":"acme","keys":["/v1/item?id=1"]}"#, to: a, client: client)
                    == #"{"seq":2}"#)
            try await waitUntil(seconds: 5) { Self.cursor(one) == 2 && Self.cursor(two) == 2 }
            #expect(one.node.feed?.failures == 0 && two.node.feed?.failures == 0, "no retry: woken by B")
            for edge in [one, two] { #expect(try await edge.get("/v1/item?id=1").cacheStatus.contains("fwd=miss")) }

            // B dies with the nodes' polls in flight; they go on with A, and every event after is
            // applied once: each purge's key is a miss on both nodes, and the cursors end at the head.
            for edge in [one, two] {
                for id in 2...4 { _ = try await edge.get("/v1/item?id=\(id)") }
            }
            b.kill()
            for id in 2...4 {
                let answer = try await Self.publish(
                    #"{"tenant":"acme","keys":["/v1/item?id=\#(id)"]}"#, to: a, client: client)
                #expect(answer == #"{"seq":\#(id + 1)}"#)
            }
            try await waitUntil(seconds: 20, advancing: one.clock, two.clock) {
                Self.cursor(one) == 5 && Self.cursor(two) == 5
            }
            for edge in [one, two] {
                for id in 2...4 {
                    let answer = try await edge.get("/v1/item?id=\(id)")
                    #expect(answer.cacheStatus.contains("fwd=miss"), "\(edge.runtime.config.node.id) id=\(id)")
                }
                #expect(edge.upstream.count("/v1/item?id=2") == 2, "fetched once before and once after its purge")
            }
        } catch {
            await one.shutdown()
            await two.shutdown()
            try? await client.shutdown()
            throw error
        }
        await one.shutdown()
        await two.shutdown()
        try await client.shutdown()
    }

    /// Runs the test run's `pg-restart.sh` (`stop` or `start`) for the restartable cluster.
    static func restartablePostgres(_ command: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [try TestEnvironment.require("TE_TEST_POSTGRES_RESTART"), command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Reaped here with waitpid: Foundation's own bookkeeping did not notice this child's exit
        // once the server it started lived on (`isRunning` stayed true beside a defunct process).
        var exit: Int32?
        for _ in 0..<600 where exit == nil {
            if !process.isRunning {
                exit = process.terminationStatus  // Foundation saw it end
            } else {
                var status: Int32 = 0
                if waitpid(process.processIdentifier, &status, WNOHANG) == process.processIdentifier {
                    exit = (status >> 8) & 0xFF
                } else {
                    try await Task.sleep(for: .milliseconds(50))  // never a blocked thread of the test pool
                }
            }
        }
        try #require(exit == 0, "pg-restart.sh \(command) failed")
    }

    @Test func publishesDuringAPostgreSQLOutageAreRefusedAndNothingAcknowledgedIsLost() async throws {
        let database = try await OriginStoreContractTests.freshPostgresDatabase(
            on: "TE_TEST_POSTGRES_RESTARTABLE_URL")
        var storage = OriginStorage.Postgres(url: database)
        storage.tls = .disable
        let origin = try await OriginHarness.start { $0.storage = .postgres(storage) }
        let acknowledged = Locked<[Int: String]>([:])  // seq → the key it purged
        let statuses = Locked<[Int]>([])
        let stop = Locked(false)
        let publisher = Task {
            var index = 0
            while !stop.value {
                index += 1
                let key = "/outage/\(index)"
                if let answer = try? await origin.publish(#"{"tenant":"acme","keys":["\#(key)"]}"#) {
                    statuses.update { $0.append(answer.status) }
                    if answer.status == 200, let seq = Int(answer.body.filter(\.isNumber)) {
                        acknowledged.update { $0[seq] = key }
                    }
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        do {
            try await waitUntil(seconds: 10) { acknowledged.value.count >= 5 }
            try await Self.restartablePostgres("stop")
            try await waitUntil(seconds: 10) { statuses.value.contains(503) }
            // A replica that cannot read the log does not answer feeds from its memory: its nodes
            // would take "nothing new" for the truth and never fall back to bounded staleness.
            try await waitUntil(seconds: 10) {
                try await origin.call(.GET, "/v1/invalidations?after=0", token: OriginHarness.nodeToken).status == 503
            }
            try await Self.restartablePostgres("start")
            let before = acknowledged.value.count
            try await waitUntil(seconds: 30) { acknowledged.value.count >= before + 5 }
            stop.update { $0 = true }
            await publisher.value
            #expect(Set(statuses.value).isSubset(of: [200, 503]), "refused with 503, never anything else")
            #expect(statuses.value.contains(503))
            // Every acknowledged event is in the log, under its number, and the numbers have no gap.
            let feed = try await origin.call(.GET, "/v1/invalidations?after=0", token: OriginHarness.nodeToken)
            let events = try #require(JSONValue.parse(Array(feed.body.utf8))?.objectValue?["events"]?.arrayValue)
            let logged = try events.map { try InvalidationEvent(json: $0) }
            try #require(!logged.isEmpty)
            #expect(logged.map(\.seq) == Array(1...logged.count), "gap-free")
            for (seq, key) in acknowledged.value {
                #expect(logged.first { $0.seq == seq }?.purge.keys == [key], "acknowledged seq \(seq) kept")
            }
        } catch {
            stop.update { $0 = true }
            try? await Self.restartablePostgres("start")
            await origin.stop()
            throw error
        }
        await origin.stop()
    }
}
