import Foundation
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// With `tracing.otlp_endpoint` set, the miss path's spans reach a real OTLP/HTTP endpoint (a
/// loopback server standing in for the collector), in the client's trace, and the upstream is
/// sent the fetch span's context.
@Suite("Traces of the miss path", .serialized)
struct MissTracingTests {
    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }

    @Test func aMissExportsSpansInTheClientsTraceAndAHitNone() async throws {
        let collector = try await TestUpstream(script: { _ in .init(status: 200) })
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let url = try TestEnvironment.redisURL(database: 26)
        do {
            try await withEdge(
                configure: { config in
                    config.tracing.otlpEndpoint = collector.url
                    config.cache.redis = .init(url: url, poolSize: 1, timeoutMs: 1000)
                }, script: SharedTierTests.body
            ) { edge in
                let miss = try await edge.get("/traced", headers: [("traceparent", "00-\(trace)-00f067aa0ba902b7-01")])
                #expect(miss.status == 200)
                let sent = try #require(edge.upstream.requests("/traced").first?.header("traceparent"))
                let fetch = try #require(RequestCorrelation.TraceParent(sent[...]))
                #expect(fetch.traceID == trace && fetch.parentID != "00f067aa0ba902b7", "\(sent)")
                try await waitUntil(seconds: 15) { !collector.requests("/v1/traces").isEmpty }
                let export = try #require(collector.requests("/v1/traces").first)
                #expect(export.method == "POST" && export.header("content-type") == "application/x-protobuf")
                let body = export.body
                func contains(_ needle: [UInt8]) -> Bool {
                    body.count >= needle.count
                        && (0...(body.count - needle.count)).contains {
                            Array(body[$0..<($0 + needle.count)]) == needle
                        }
                }
                #expect(contains(Self.bytes(hex: trace)), "the spans are in the client's trace")
                #expect(contains(Self.bytes(hex: fetch.parentID)), "the upstream's parent is the exported fetch span")
                #expect(contains(Array("upstream fetch".utf8)) && contains(Array("l2 get".utf8)))
                #expect(contains(Array("tenantedge-node".utf8)), "the service name")
                // Hits in another trace: no span, so nothing of that trace is ever exported.
                let other = "0af7651916cd43dd8448eb211c80319c"
                for _ in 0..<3 {
                    let hit = try await edge.get(
                        "/traced", headers: [("traceparent", "00-\(other)-b7ad6b7169203331-01")])
                    #expect(hit.cacheStatus.contains("hit"))
                }
                try await Task.sleep(for: .seconds(6))  // past the exporter's 5 s batch delay
                let later = collector.requests("/v1/traces").flatMap(\.body)
                #expect(
                    later.count < Self.bytes(hex: other).count
                        || !(0...(later.count - 16)).contains { Array(later[$0..<($0 + 16)]) == Self.bytes(hex: other) }
                )
            }
        } catch {
            await collector.stop()
            throw error
        }
        await collector.stop()
    }
}
