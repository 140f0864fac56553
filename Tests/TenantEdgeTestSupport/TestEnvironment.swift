import Foundation
import TenantEdgeCore
import TenantEdgeNative

/// What `make test` started for the suite (Tests/support/test-env.sh), read from the environment.
/// A missing value is a failed test, never a skip: run the suite through `make test`.
package enum TestEnvironment {
    /// A test precondition that did not hold; thrown, so the test fails with this text.
    package struct Unmet: Error, CustomStringConvertible {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    package static func require(_ name: String) throws -> String {
        let value = ProcessInfo.processInfo.environment[name] ?? ""
        guard !value.isEmpty else { throw Unmet("\(name) is not set: run the suite with `make test`") }
        return value
    }

    /// Set by `make sanitize-address` and `make sanitize-thread` (`TE_SANITIZER`): how many times
    /// looser a bound on wall-clock latency may be read, since a sanitized build on 2 cores runs
    /// several times slower. 1 in `make test`, where the bound itself is checked.
    package static var latencySlack: Double {
        (ProcessInfo.processInfo.environment["TE_SANITIZER"] ?? "").isEmpty ? 1 : 3
    }

    /// The suite's redis-server, database `database` emptied first: each test owns its database.
    /// Suites run in parallel, so a database used from two test files is refused (`claim`).
    package static func redisURL(database: Int, file: String = #fileID) throws -> String {
        try claim(redisDatabase: database, file: file)
        guard let port = Int(try require("TE_TEST_REDIS_PORT")) else { throw Unmet("TE_TEST_REDIS_PORT is not a port") }
        let redis = try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 1000)
        _ = try redis.command("SELECT", String(database))
        _ = try redis.command("FLUSHDB")
        return "redis://127.0.0.1:\(port)/\(database)"
    }

    /// Which test file uses each database of the suite's redis-server.
    private static let redisDatabaseOwners = Locked<[Int: String]>([:])

    /// Fails when `database` of the suite's redis-server is already used by another test file: two
    /// suites running at once in one database empty and count each other's keys.
    package static func claim(redisDatabase database: Int, file: String = #fileID) throws {
        let owner = redisDatabaseOwners.modify { owners in
            if owners[database] == nil { owners[database] = file }
            return owners[database] ?? file
        }
        guard owner == file else { throw Unmet("Redis database \(database) is used by both \(owner) and \(file)") }
    }
}

/// Polls `condition` until it holds, for background work a test cannot await directly (a refresh, a
/// follower's next poll); throws when it has not held within `seconds`. With `clocks`, background
/// work waiting on that clock (a backoff, a watch interval) is let through by moving a clock
/// `step` seconds whenever something sleeps on it: time passes by the clock, not by sleeping.
package func waitUntil(
    seconds: Int = 2, advancing clocks: ManualCacheClock..., step: Double = 0.5,
    _ condition: () async throws -> Bool
) async throws {
    try await waitUntil(seconds: seconds, advancing: clocks, step: step, condition)
}

/// `waitUntil` with the clocks to move on as a list.
package func waitUntil(
    seconds: Int = 2, advancing clocks: [ManualCacheClock], step: Double = 0.5,
    _ condition: () async throws -> Bool
) async throws {
    for _ in 0..<(seconds * 100) {
        if try await condition() { return }
        for clock in clocks where clock.sleeperCount > 0 { clock.advance(by: step) }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TestEnvironment.Unmet("condition not met within \(seconds) s")
}

/// A fresh temporary directory.
package func temporaryDirectory(_ prefix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
