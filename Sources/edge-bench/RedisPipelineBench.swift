import Foundation
import TenantEdgeCore
import TenantEdgeNative

/// `edge-bench redis-pipeline PORT [KEYS] [ROUNDS] [SIZE]`: writes KEYS values of SIZE bytes, then
/// reads them back ROUNDS times as one pipelined batch of KEYS GETs through TenantEdge's hiredis
/// adapter, and prints GETs per second, to set beside `redis-benchmark -P KEYS -t get` on the same Redis.
enum RedisPipelineBench {
    static func run(_ arguments: [String]) throws {
        guard arguments.count >= 3, let port = Int(arguments[2]) else { EdgeBench.usage() }
        let keys = arguments.count > 3 ? Int(arguments[3]) ?? 1000 : 1000
        let rounds = arguments.count > 4 ? Int(arguments[4]) ?? 200 : 200
        let size = arguments.count > 5 ? Int(arguments[5]) ?? 1024 : 1024
        let redis = try RedisConnection(host: "127.0.0.1", port: port, timeoutMs: 5000)
        let value = [UInt8](repeating: 0x61, count: size)
        _ = try redis.pipeline((0..<keys).map { [Array("SET".utf8), Array("te:bench:\($0)".utf8), value] })
        let batch = (0..<keys).map { [Array("GET".utf8), Array("te:bench:\($0)".utf8)] }
        _ = try redis.pipeline(batch)  // warm-up
        let started = ContinuousClock.now
        var bytes = 0
        for _ in 0..<rounds {
            for reply in try redis.pipeline(batch) { if case .string(let data) = reply { bytes += data.count } }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard bytes == keys * rounds * size else { throw EdgeError(.redisFailure, "short read: \(bytes) bytes") }
        print(String(format: "%.0f", Double(keys * rounds) / seconds))
    }
}
