import Foundation
import TenantEdgeCore
import Testing

@testable import TenantEdgeNative

@Suite("hiredis, libmaxminddb and libcurl against real servers and files")
struct CLibrarySmokeTests {
    @Test func redisAnswersPingAndStoresBinaryValues() throws {
        let port = try #require(Int(try TestEnvironment.require("TE_TEST_REDIS_PORT")))
        let redis = try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 1000)
        #expect(try redis.command("PING") == .status("PONG"))
        let value: [UInt8] = [0, 255, 13, 10, 0, 42]
        #expect(try redis.command([Array("SET".utf8), Array("te:smoke:bin".utf8), value]) == .status("OK"))
        #expect(try redis.command([Array("GET".utf8), Array("te:smoke:bin".utf8)]) == .string(value))
        #expect(try redis.command("GET", "te:smoke:absent") == .null)
        guard case .error = try redis.command("NOSUCHCOMMAND") else {
            Issue.record("expected a Redis error reply")
            return
        }
    }

    @Test func redisPipelineSendsABatchAndReadsEveryReplyInOrder() throws {
        let port = try #require(Int(try TestEnvironment.require("TE_TEST_REDIS_PORT")))
        let redis = try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 1000)
        let sets = (0..<100).map {
            [Array("SET".utf8), Array("te:pipe:\($0)".utf8), [UInt8(truncatingIfNeeded: $0), 0, 255]]
        }
        #expect(try redis.pipeline(sets).allSatisfy { $0 == .status("OK") })
        let gets = (0..<100).map { [Array("GET".utf8), Array("te:pipe:\($0)".utf8)] }
        let replies = try redis.pipeline(gets)
        #expect(replies == (0..<100).map { .string([UInt8(truncatingIfNeeded: $0), 0, 255]) })
    }

    @Test func redisConnectionRefusedIsAClearError() {
        #expect(throws: EdgeError.self) { try RedisConnection(host: "127.0.0.1", port: 1, timeoutMs: 200) }
    }

    @Test func generatedDatabaseMapsAddressesToCountryAndLocation() throws {
        let database = try GeoIPDatabase(path: try TestEnvironment.require("TE_TEST_MMDB"))
        let london = try #require(try database.lookup("81.2.69.160"))
        #expect(london.country == "GB")
        #expect(london.continent == "EU")
        #expect(abs((london.latitude ?? 0) - 51.5142) < 0.001)
        let frankfurt = try #require(try database.lookup("2001:db8:1::5"))
        #expect(frankfurt.country == "DE")
        #expect(try database.lookup("10.1.2.3") == nil)
        #expect(throws: EdgeError.self) { try database.lookup("not-an-ip") }
    }

    @Test func missingOrCorruptDatabaseIsRefused() throws {
        #expect(throws: EdgeError.self) { try GeoIPDatabase(path: "/nonexistent/file.mmdb") }
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("te-garbage-\(getpid()).mmdb")
        try Data("this is not a database".utf8).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        #expect(throws: EdgeError.self) { try GeoIPDatabase(path: garbage.path) }
    }

    @Test func maxMindTestDatabaseWhenSharedIsPresent() throws {
        // ../shared/geoip is optional for the project; when `make test` found it, it is used.
        let directory = ProcessInfo.processInfo.environment["TE_SHARED_GEOIP"] ?? ""
        guard !directory.isEmpty else { return }
        let database = try GeoIPDatabase(path: directory + "/GeoIP2-City-Test.mmdb")
        let location = try #require(try database.lookup("81.2.69.160"))
        #expect(location.country == "GB")
        let seattle = try #require(try database.lookup("216.160.83.56"))
        #expect(seattle.country == "US")
    }

    @Test func curlFetchesOverVerifiedTLS() throws {
        let url = try TestEnvironment.require("TE_TEST_HTTPS_URL")
        let response = try CurlClient().get(url, caFile: try TestEnvironment.require("TE_TEST_CA_FILE"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "hello over tls\n")
    }

    @Test func curlRefusesAServerFromAnotherCA() throws {
        let url = try TestEnvironment.require("TE_TEST_HTTPS_URL")
        do {
            _ = try CurlClient().get(url, caFile: try TestEnvironment.require("TE_TEST_OTHER_CA_FILE"))
            Issue.record("a certificate from another CA was accepted")
        } catch {
            #expect((error as? EdgeError)?.message.contains("curl error \(CurlClient.peerVerificationFailed)") == true)
        }
    }
}
