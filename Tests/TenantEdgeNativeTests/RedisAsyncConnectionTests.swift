import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeNative
import Testing

/// hiredis's async API on our poll loop, against the real redis-server of `make test`.
@Suite("hiredis async connection")
struct RedisAsyncConnectionTests {
    static func endpoint(_ suffix: String = "") throws -> RedisEndpoint {
        let port = try TestEnvironment.require("TE_TEST_REDIS_PORT")
        return try #require(RedisEndpoint(parsing: "redis://\(suffix)127.0.0.1:\(port)/4"))
    }

    /// Submits and waits (tests only: the node never waits on a reply).
    static func call(_ connection: RedisAsyncConnection, _ arguments: [String]) throws -> RedisConnection.Reply {
        let reply = Reply()
        connection.submit(arguments.map { Array($0.utf8) }) { reply.set($0) }
        try #require(reply.done.wait(timeout: .now() + 2) == .success, "no reply within 2 s")
        return try reply.value!.get()
    }

    final class Reply: @unchecked Sendable {  // written once by the loop thread before `done`
        let done = DispatchSemaphore(value: 0)
        var value: Result<RedisConnection.Reply, EdgeError>?
        func set(_ result: Result<RedisConnection.Reply, EdgeError>) {
            value = result
            done.signal()
        }
    }

    @Test func manyCommandsInFlightAnswerInOrderWithBinaryValues() throws {
        let connection = try RedisAsyncConnection.open(try Self.endpoint(), timeoutMs: 1000)
        let value: [UInt8] = [0, 255, 13, 10, 0x24]
        #expect(try Self.call(connection, ["SELECT", "4"]) == .status("OK"))
        let replies = Mutex<[Int: RedisConnection.Reply]>([:])
        let done = DispatchSemaphore(value: 0)
        for index in 0..<500 {
            connection.submit([Array("SET".utf8), Array("te:async:\(index)".utf8), value + Array(String(index).utf8)]) {
                _ in
            }
            connection.submit([Array("GET".utf8), Array("te:async:\(index)".utf8)]) { reply in
                if replies.withLock({
                    $0[index] = try? reply.get()
                    return $0.count
                }) == 500 {
                    done.signal()
                }
            }
        }
        #expect(done.wait(timeout: .now() + 5) == .success)
        let all = replies.withLock { $0 }
        #expect((0..<500).allSatisfy { all[$0] == .string(value + Array(String($0).utf8)) })
    }

    @Test func wrongCredentialsAndAClosedPortAreClearErrors() throws {
        #expect(throws: EdgeError.self) {
            try RedisAsyncConnection.open(try Self.endpoint("nobody:hunter2-secret@"), timeoutMs: 1000)
        }
        do {
            _ = try RedisAsyncConnection.open(try Self.endpoint("nobody:hunter2-secret@"), timeoutMs: 1000)
        } catch {
            #expect(!"\(error)".contains("hunter2"), "the password never reaches an error")
        }
        let closed = try #require(RedisEndpoint(parsing: "redis://127.0.0.1:1/0"))
        #expect(throws: EdgeError.self) { try RedisAsyncConnection.open(closed, timeoutMs: 500) }
    }

    @Test func aKilledConnectionFailsItsCallsInsteadOfHanging() throws {
        let connection = try RedisAsyncConnection.open(try Self.endpoint(), timeoutMs: 1000)
        guard case .integer(let id) = try Self.call(connection, ["CLIENT", "ID"]) else {
            Issue.record("CLIENT ID")
            return
        }
        let admin = try RedisConnection(
            host: "127.0.0.1", port: Int(try TestEnvironment.require("TE_TEST_REDIS_PORT"))!, timeoutMs: 1000)
        #expect(try admin.command("CLIENT", "KILL", "ID", String(id)) == .integer(1))
        var failed = false
        for _ in 0..<20 where !failed {  // the loop notices the close on its next read
            if (try? Self.call(connection, ["PING"])) == nil {
                failed = true
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        #expect(failed, "a dropped connection answers with an error")
    }
}
