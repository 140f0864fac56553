/// Bounds the audit and log lines security events write, whatever arrives: per key (the caller's
/// kind and tenant), the first
/// `linesPerWindow` events of each 60-second window are written; the rest are only counted, and
/// the first line of a later window carries how many were left out. 10,000 wrong admin tokens a
/// minute cost `linesPerWindow` lines, not 10,000, so the audit log cannot be used to fill the disk.
/// Metrics still count every event.
public struct SecurityEventThrottle: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Write this event; `suppressed` events of the kind were left out before it.
        case write(suppressed: Int)
        case suppress
    }

    public let linesPerWindow: Int
    public let windowSeconds: Double
    private var windows: [String: (start: Double, written: Int, suppressed: Int)] = [:]

    public init(linesPerWindow: Int = 10, windowSeconds: Double = 60) {
        self.linesPerWindow = max(1, linesPerWindow)
        self.windowSeconds = windowSeconds
    }

    public mutating func admit(kind: String, now: Double) -> Decision {
        var window = windows[kind] ?? (start: now, written: 0, suppressed: 0)
        var carried = 0
        if now - window.start >= windowSeconds || now < window.start {
            carried = window.suppressed
            window = (start: now, written: 0, suppressed: 0)
        }
        defer { windows[kind] = window }
        guard window.written < linesPerWindow else {
            window.suppressed += 1
            return .suppress
        }
        window.written += 1
        return .write(suppressed: carried)
    }
}
