/// Which regions may be chosen for a client: a client goes to the nearest healthy region.
/// Two sources: the bundle (or the node file) may mark a region `down`, the way an nginx upstream
/// server is marked `down` for maintenance; and the node's own probes of the other regions'
/// `public_url` health endpoints. A state machine fed with probe results: it answers with the
/// change, if any, so the caller can log it and drop the decisions made under the old state.
public struct RegionHealth: Sendable, Equatable {
    /// Probe results needed to change a region's state. Defaults: down after 2 failures in a row
    /// (one lost packet does not move traffic), up again after 1 success.
    public struct Thresholds: Sendable, Equatable {
        public var failuresToMarkDown = 2
        public var successesToMarkUp = 1
        public init() {}
    }

    public enum Change: Sendable, Equatable {
        case wentDown(String)
        case cameUp(String)
    }

    private struct ProbeState: Sendable, Equatable {
        var up = true
        var failures = 0
        var successes = 0
    }

    public let thresholds: Thresholds
    private var probes: [String: ProbeState] = [:]

    public init(thresholds: Thresholds = Thresholds()) { self.thresholds = thresholds }

    /// Records one probe of `region`; returns the change it caused.
    public mutating func record(region: String, success: Bool) -> Change? {
        var state = probes[region] ?? ProbeState()
        defer { probes[region] = state }
        if success {
            state.failures = 0
            state.successes += 1
            if !state.up && state.successes >= thresholds.successesToMarkUp {
                state.up = true
                return .cameUp(region)
            }
        } else {
            state.successes = 0
            state.failures += 1
            if state.up && state.failures >= thresholds.failuresToMarkDown {
                state.up = false
                return .wentDown(region)
            }
        }
        return nil
    }

    /// Whether the probes say `region` is up (regions never probed are).
    public func probedUp(_ region: String) -> Bool { probes[region]?.up ?? true }

    /// The regions that may be chosen: not marked down, and not down by the probes. This node's
    /// own region is up by its own account unless the bundle marks it down.
    public func healthy(_ regions: [RegionConfig], home: String) -> Set<String> {
        Set(regions.filter { !$0.down && ($0.name == home || probedUp($0.name)) }.map(\.name))
    }

    /// Forgets regions no longer configured.
    public mutating func keep(only names: Set<String>) {
        probes = probes.filter { names.contains($0.key) }
    }
}
