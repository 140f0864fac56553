import Testing

@testable import TenantEdgeCore

/// Request ids and `traceparent` as the node reads them from clients: exactly what is allowed, the
/// rest refused (and replaced by the caller).
@Suite("Request correlation")
struct RequestCorrelationTests {
    @Test(arguments: ["abc", "req-1_2.3:4@host/x+y=z", String(repeating: "a", count: 128)])
    func safeRequestIDsAreKept(_ id: String) { #expect(RequestCorrelation.isValidRequestID(id[...])) }

    @Test(arguments: [
        "", String(repeating: "a", count: 129), "a b", "a\"b", "a\nb", "a\u{0}b", "x}\",evil{a=\"1", "é", "a\tb",
        "<script>", "a;b", "a,b",
    ])
    func hostileRequestIDsAreRefused(_ id: String) { #expect(!RequestCorrelation.isValidRequestID(id[...])) }

    @Test func aValidTraceparentIsReadAndWrittenBack() throws {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let parsed = try #require(RequestCorrelation.TraceParent(text[...]))
        #expect(parsed.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && parsed.parentID == "00f067aa0ba902b7")
        #expect(parsed.flags == "01" && parsed.header == text)
        // A later version is read as 00 when its first fields fit, extra fields after a dash.
        #expect(
            RequestCorrelation.TraceParent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"[...]) != nil)
    }

    @Test(arguments: [
        "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 has nothing after
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // later version, no dash after
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
    ])
    func malformedTraceparentsAreRefused(_ text: String) { #expect(RequestCorrelation.TraceParent(text[...]) == nil) }

    @Test func traceStateIsBounded() {
        #expect(RequestCorrelation.isValidTraceState("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"[...]))
        #expect(!RequestCorrelation.isValidTraceState(String(repeating: "a", count: 513)[...]))
        #expect(!RequestCorrelation.isValidTraceState("a=\n1"[...]))
    }
}
