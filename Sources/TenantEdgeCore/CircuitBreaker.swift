/// A circuit breaker for the shared tier, as a state machine that returns decisions (no I/O, no
/// clock of its own: every call is given `now`).
///
/// States and transitions:
/// - `closed`: calls go through; `failureThreshold` consecutive failures → `open`.
/// - `open(until)`: calls fail fast without touching the tier; at `until` → `halfOpen`.
/// - `halfOpen`: one probe call goes through, others fail fast; its success → `closed`, its
///   failure → `open` with the backoff doubled (up to `maxBackoff`).
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: Double)
        case halfOpen(probing: Bool)
    }

    public let failureThreshold: Int
    public let initialBackoff: Double
    public let maxBackoff: Double
    public private(set) var state: State = .closed
    private var consecutiveFailures = 0
    private var backoff: Double

    public init(failureThreshold: Int = 3, initialBackoff: Double = 0.5, maxBackoff: Double = 30) {
        self.failureThreshold = failureThreshold
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.backoff = initialBackoff
    }

    /// Whether the tier is considered up (for `edge_tier_up`).
    public var isUp: Bool { if case .closed = state { return true } else { return false } }

    public enum Decision: Sendable, Equatable {
        /// Make the call and report its result.
        case attempt
        /// Do not touch the tier: treat it as unavailable.
        case failFast
    }

    public mutating func beforeCall(now: Double) -> Decision {
        switch state {
        case .closed:
            return .attempt
        case .open(let until):
            guard now >= until else { return .failFast }
            state = .halfOpen(probing: true)
            return .attempt
        case .halfOpen(let probing):
            if probing { return .failFast }
            state = .halfOpen(probing: true)
            return .attempt
        }
    }

    public mutating func succeeded() {
        consecutiveFailures = 0
        backoff = initialBackoff
        state = .closed
    }

    public mutating func failed(now: Double) {
        switch state {
        case .closed:
            consecutiveFailures += 1
            if consecutiveFailures >= failureThreshold { state = .open(until: now + backoff) }
        case .halfOpen, .open:
            backoff = min(backoff * 2, maxBackoff)
            state = .open(until: now + backoff)
        }
    }
}
