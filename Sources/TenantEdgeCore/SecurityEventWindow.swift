/// Aggregates security events into bursts: per kind, tenant and source, one audit line when a burst
/// starts and, when the window closes, one line with how many there were. So the audit log grows by
/// a bounded number of lines a minute whatever arrives (`maxLinesPerWindow`), while the first
/// attempt of each burst is on record at once.
///
/// Sources come from outside (a client's address), so the distinct bursts of a window are bounded
/// per kind (`maxBursts`): past that, events of that kind go to one overflow burst, source `"*"`,
/// tenant `"*"`. Per kind, so a flood of one kind (scanners asking for unknown hosts) never takes
/// the room of another (a wrong admin token keeps its source). Kinds are the code's own constants
/// and tenants come from config, never from a request.
public struct SecurityEventWindow: Sendable {
    public struct Key: Hashable, Sendable {
        public var kind: String
        public var tenant: String
        public var source: String
        public init(kind: String, tenant: String, source: String) {
            self.kind = kind
            self.tenant = tenant
            self.source = source
        }
    }

    /// A run of events with one key: when the first and last came, and how many.
    public struct Burst: Equatable, Sendable {
        public var key: Key
        public var first: Double
        public var last: Double
        public var count: Int
        public var detail: String
    }

    /// What the caller writes (audit and log) for one event, or at a window's close.
    public enum Line: Equatable, Sendable {
        /// The first event of a burst: written at once.
        case started(Burst)
        /// A burst that had more than its first event, at its window's close: written with its count.
        case closed(Burst)
    }

    public let windowSeconds: Double
    public let maxBursts: Int
    /// Bursts kept for the dashboard's timeline, newest last.
    public let timelineLength: Int
    private var windowStart: Double?
    private var open: [Key: Burst] = [:]
    /// Open bursts per kind, overflow included.
    private var openPerKind: [String: Int] = [:]
    private var timeline: [Burst] = []

    public init(windowSeconds: Double = 60, maxBursts: Int = 8, timelineLength: Int = 100) {
        self.windowSeconds = max(1, windowSeconds)
        self.maxBursts = max(1, maxBursts)
        self.timelineLength = max(1, timelineLength)
    }

    /// Lines written per window at most, whatever arrives: a start and a close line per burst, for
    /// `maxBursts` bursts and one overflow burst per kind.
    public static func maxLinesPerWindow(maxBursts: Int, kinds: Int) -> Int { 2 * kinds * (maxBursts + 1) }

    /// Counts one event; returns the lines to write now (a closed window's summaries first).
    public mutating func record(kind: String, tenant: String, source: String, detail: String, now: Double) -> [Line] {
        var lines = closeIfDue(now: now)
        if windowStart == nil { windowStart = now }
        var key = Key(kind: kind, tenant: tenant, source: source)
        if open[key] == nil && openPerKind[kind, default: 0] >= maxBursts {
            key = Key(kind: kind, tenant: "*", source: "*")
        }
        if var burst = open[key] {
            burst.count = burst.count.addingReportingOverflow(1).overflow ? Int.max : burst.count + 1
            burst.last = max(burst.last, now)
            open[key] = burst
        } else {
            let burst = Burst(key: key, first: now, last: now, count: 1, detail: detail)
            open[key] = burst
            openPerKind[kind, default: 0] += 1
            lines.append(.started(burst))
        }
        return lines
    }

    /// Closes the window when it is due (the flush timer calls this): the summary lines of bursts
    /// with more than one event. A clock that went back closes the window too, so none is held open.
    public mutating func closeIfDue(now: Double) -> [Line] {
        guard let start = windowStart, now - start >= windowSeconds || now < start else { return [] }
        return close()
    }

    /// Closes the window now (shutdown): the summary lines of bursts with more than one event.
    public mutating func close() -> [Line] {
        let bursts = open.values.sorted {
            ($0.first, $0.key.kind, $0.key.source) < ($1.first, $1.key.kind, $1.key.source)
        }
        timeline.append(contentsOf: bursts)
        if timeline.count > timelineLength { timeline.removeFirst(timeline.count - timelineLength) }
        open = [:]
        openPerKind = [:]
        windowStart = nil
        return bursts.filter { $0.count > 1 }.map { .closed($0) }
    }

    /// The latest bursts, open ones included, newest (by last event) first, at most `timelineLength`.
    public var recent: [Burst] {
        let all = timeline + open.values
        return Array(all.sorted { $0.last > $1.last }.prefix(timelineLength))
    }
}
