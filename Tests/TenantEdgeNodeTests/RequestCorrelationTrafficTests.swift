import Foundation
import TenantEdgeCore
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// Request ids and trace context on their way to the upstream and into the log; `Server-Timing`
/// and the sampled access log for tenants that turn them on.
@Suite("Request ids, traces and timings", .serialized)
struct RequestCorrelationTrafficTests {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func aValidRequestIdAndTraceReachTheUpstreamAndHostileOnesAreReplaced() async throws {
        try await withEdge(script: SharedTierTests.body) { edge in
            _ = try await edge.get(
                "/r/1",
                headers: [("X-Request-Id", "client-id-1"), ("traceparent", Self.traceparent), ("tracestate", "a=1")])
            let sent = try #require(edge.upstream.requests("/r/1").first)
            #expect(sent.header("x-request-id") == "client-id-1")
            let trace = try #require(sent.header("traceparent").flatMap { RequestCorrelation.TraceParent($0[...]) })
            #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && trace.flags == "01")
            #expect(trace.parentID != "00f067aa0ba902b7", "the node is the upstream's parent")
            #expect(sent.header("tracestate") == "a=1")
            _ = try await edge.get(
                "/r/2",
                headers: [("X-Request-Id", #"x"}, {"evil":"1"#), ("traceparent", "00-zz"), ("tracestate", "a=1")])
            let replaced = try #require(edge.upstream.requests("/r/2").first)
            let id = try #require(replaced.header("x-request-id"))
            #expect(id != #"x"}, {"evil":"1"# && RequestCorrelation.isValidRequestID(id[...]))
            #expect(replaced.header("traceparent").flatMap { RequestCorrelation.TraceParent($0[...]) } != nil)
            #expect(replaced.header("tracestate") == nil, "no state without the trace it belongs to")
            #expect(replaced.headers["x-request-id"].count == 1 && replaced.headers["traceparent"].count == 1)
            _ = try await edge.get("/r/3")
            let generated = try #require(edge.upstream.requests("/r/3").first?.header("x-request-id"))
            #expect(generated != id, "each request its own id")
            // A hit reaches no upstream and has no Server-Timing for a tenant without it.
            let hit = try await edge.get("/r/1")
            #expect(hit.cacheStatus.contains("hit") && hit.headers.first(name: "server-timing") == nil)
        }
    }

    @Test func aFailedUpstreamIsLoggedWithTheRequestId() async throws {
        let logs = LogCapture()
        let edge = try await EdgeHarness.start(
            configure: { $0.limits.upstreamReadTimeoutMs = 200 }, logs: logs,
            script: { _ in .init(status: 200, delayMs: 1500) })
        do {
            #expect(try await edge.get("/slow", headers: [("X-Request-Id", "trace-me-42")]).status == 504)
            #expect(logs.text.contains("upstream request failed") && logs.text.contains("trace-me-42"))
        } catch {
            await edge.shutdown()
            throw error
        }
        await edge.shutdown()
    }

    @Test func serverTimingAndTheAccessLogForATenantThatAsks() async throws {
        let logs = LogCapture()
        let edge = try await EdgeHarness.start(
            configure: { config in
                config.tenants[0].serverTiming = true
                config.tenants[0].accessLogSample = 1
            }, logs: logs, script: SharedTierTests.body)
        do {
            let miss = try await edge.get("/t", headers: [("X-Request-Id", "access-1")])
            let timing = try #require(miss.headers.first(name: "server-timing"))
            #expect(timing.hasPrefix("edge;dur=") && timing.contains(", upstream;dur="), "\(timing)")
            let hit = try await edge.get("/t")
            let hitTiming = try #require(hit.headers.first(name: "server-timing"))
            #expect(hitTiming.hasPrefix("edge;dur=") && !hitTiming.contains("upstream"), "\(hitTiming)")
            #expect(try await edge.get("/t", host: "api.globex.test").headers.first(name: "server-timing") == nil)
            _ = try await edge.get("/t?token=hunter2&b=1", headers: [("Cookie", "secret=1")])
            let lines = logs.text.split(separator: "\n").filter { $0.contains(#""log": access"#) }
            #expect(lines.count == 3, "acme's three requests, not globex's: \(lines)")
            #expect(lines.first?.contains("access-1") == true && lines.first?.contains(#""tenant": acme"#) == true)
            #expect(!logs.text.contains("secret=1"), "no header value in the access log")
            #expect(!logs.text.contains("hunter2") && logs.text.contains(#""query_params": 2"#), "no query value")
        } catch {
            await edge.shutdown()
            throw error
        }
        await edge.shutdown()
    }
}
