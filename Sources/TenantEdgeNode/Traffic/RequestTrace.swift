import NIOCore
import Synchronization
import TenantEdgeCore

/// What one request carries to its upstream and its log lines: a request id (the client's when
/// valid, else one of ours) and W3C trace context (the client's trace continued under a new parent
/// id, or a new trace). Made only on the paths that reach the upstream or write a log line, so a
/// hit costs nothing for it.
struct UpstreamCorrelation: Sendable {
    var requestID: String
    var traceparent: RequestCorrelation.TraceParent
    var tracestate: String?

    /// From the client's headers; anything invalid is replaced, never passed on.
    init(requestID: Substring?, traceparent: Substring?, tracestate: Substring?, ids: RequestIDs) {
        self.requestID =
            requestID.flatMap { RequestCorrelation.isValidRequestID($0) ? String($0) : nil } ?? ids.nextRequestID()
        if let incoming = traceparent.flatMap(RequestCorrelation.TraceParent.init) {
            self.traceparent = RequestCorrelation.TraceParent(
                traceID: incoming.traceID, parentID: ids.spanID(), flags: incoming.flags)
            self.tracestate = tracestate.flatMap { RequestCorrelation.isValidTraceState($0) ? String($0) : nil }
        } else {
            self.traceparent = RequestCorrelation.TraceParent(
                traceID: ids.traceID(), parentID: ids.spanID(), flags: "00")
            self.tracestate = nil
        }
    }
}

/// Request ids and trace and span ids, all random: a counter would tell one tenant's upstream how
/// many fetches the node made for every other tenant in between.
final class RequestIDs: Sendable {
    /// 32 hex digits.
    func nextRequestID() -> String {
        Self.hex(UInt64.random(in: 0...UInt64.max), digits: 16)
            + Self.hex(UInt64.random(in: 0...UInt64.max), digits: 16)
    }

    /// 16 hex digits, never all zeros.
    func spanID() -> String { Self.hex(UInt64.random(in: 1...UInt64.max), digits: 16) }

    /// 32 hex digits, never all zeros.
    func traceID() -> String {
        Self.hex(UInt64.random(in: 1...UInt64.max), digits: 16)
            + Self.hex(UInt64.random(in: 0...UInt64.max), digits: 16)
    }

    static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

/// Per-request timings and correlation, kept only for tenants that asked for `Server-Timing` or an
/// access log: the time spent on L2 and the upstream, and the request id used upstream.
final class RequestTrace: Sendable {
    private struct State {
        var l2Nanoseconds: Int64 = 0
        var upstreamNanoseconds: Int64 = 0
        var usedL2 = false
        var usedUpstream = false
        var requestID: String?
    }
    private let state = Mutex(State())

    func recordL2(nanoseconds: Int64) {
        state.withLock {
            $0.usedL2 = true
            $0.l2Nanoseconds &+= max(0, nanoseconds)
        }
    }

    func recordUpstream(nanoseconds: Int64, requestID: String) {
        state.withLock {
            $0.usedUpstream = true
            $0.upstreamNanoseconds &+= max(0, nanoseconds)
            $0.requestID = requestID
        }
    }

    var requestID: String? { state.withLock { $0.requestID } }

    /// `edge;dur=…, l2;dur=…, upstream;dur=…` in milliseconds, the parts that happened.
    func serverTiming(totalNanoseconds: Int64) -> String {
        let (state) = self.state.withLock { $0 }
        func milliseconds(_ nanoseconds: Int64) -> String {
            let hundredths = max(0, nanoseconds) / 10_000
            let fraction = hundredths % 100
            return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
        }
        var parts = ["edge;dur=\(milliseconds(totalNanoseconds))"]
        if state.usedL2 { parts.append("l2;dur=\(milliseconds(state.l2Nanoseconds))") }
        if state.usedUpstream { parts.append("upstream;dur=\(milliseconds(state.upstreamNanoseconds))") }
        return parts.joined(separator: ", ")
    }
}
