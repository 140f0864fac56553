import Logging
import ServiceLifecycle
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// The node's security events and the warnings any client can provoke. Every event is counted in
/// metrics; the audit log and the log get one line when a burst (kind, tenant, source) starts and
/// one with its count when its window closes (`SecurityEventWindow`), so a flood of 10,000 wrong
/// tokens costs a few lines, never 10,000, and the hash chain stays whole.
final class SecurityEvents: Sendable {
    /// Every kind the node records, for metrics (all present at 0) and the bound on lines.
    static let kinds = [
        "auth_failed", "decrypt_failed", "bad_signature", "stale_config_version", "residency_bypass",
        "unknown_tenant", "forwarded_for_untrusted",
    ]
    static let windowSeconds = 60.0
    /// Distinct bursts (tenant and source) per kind and window before the rest share one.
    static let maxBursts = 8
    /// Audit and log lines a window may hold at most, whatever arrives (docs/operations.md).
    static let maxLinesPerWindow = SecurityEventWindow.maxLinesPerWindow(maxBursts: maxBursts, kinds: kinds.count)

    private let nodeID: String
    private let metrics: EdgeMetrics
    private let audit: AuditLog
    let clock: any CacheClock
    private let logger: Logger
    private let window = Mutex(SecurityEventWindow(windowSeconds: windowSeconds, maxBursts: maxBursts))
    /// The same bound for warnings (an upstream that fails under a flood).
    private let warningLines = Mutex(SecurityEventThrottle())
    /// Every security event since start, written or not.
    let count = Atomic<Int>(0)

    init(nodeID: String, metrics: EdgeMetrics, audit: AuditLog, clock: any CacheClock, logger: Logger) {
        self.nodeID = nodeID
        self.metrics = metrics
        self.audit = audit
        self.clock = clock
        self.logger = logger
    }

    /// Logs a warning at most a few times a minute per `kind`, saying how many were left out.
    func throttledWarning(_ kind: String, _ message: Logger.Message, metadata: Logger.Metadata = [:]) {
        let now = clock.now()
        guard case .write(let suppressed) = warningLines.withLock({ $0.admit(kind: kind, now: now) }) else { return }
        var all = metadata
        if suppressed > 0 { all["suppressed_before"] = "\(suppressed)" }
        logger.warning(message, metadata: all)
    }

    /// A security event. `tenant` is a tenant of the config or `-` (never a string from a request);
    /// `source` is where it came from (a client's address, `redis`, `memory`, an actor): it goes in
    /// the audit line, so it never holds key material, a token or a body. `detail` is the reason,
    /// kept from a burst's first event.
    func record(_ kind: String, tenant: String, source: String, detail: String) {
        metrics.recordSecurityEvent(kind)
        count.add(1, ordering: .relaxed)
        let now = clock.now()
        let source = String(decoding: source.utf8.prefix(64), as: UTF8.self)
        log(
            window.withLock {
                auditLines($0.record(kind: kind, tenant: tenant, source: source, detail: detail, now: now))
            })
    }

    /// Closes the window when due (the flush service, every few seconds). Lines are handed to the
    /// audit log under the window's lock, so once any caller's flush returns, every line of the
    /// windows closed so far is queued in order (`AuditLog.flush` then writes them): a caller never
    /// finds the window closed by another whose lines are still on the way. The log gets them after
    /// the lock: a log handler writes to stderr as it goes, and a slow stderr must not hold every
    /// event loop that records an event.
    func flush() {
        let now = clock.now()
        log(window.withLock { auditLines($0.closeIfDue(now: now)) })
    }

    /// Closes the window now (shutdown), so no count is lost.
    func close() { log(window.withLock { auditLines($0.close()) }) }

    /// The latest bursts for the dashboard, newest first.
    var recent: [SecurityEventWindow.Burst] { window.withLock { $0.recent } }

    /// Called with the window's lock held: the audit log only chains each line and queues it for its
    /// writer. Returns the lines, for `log` once the lock is released.
    private func auditLines(_ lines: [SecurityEventWindow.Line]) -> [SecurityEventWindow.Line] {
        for line in lines {
            let (burst, phase) = line.burstAndPhase
            var details = [
                "source": burst.key.source, "detail": burst.detail, "burst": phase, "count": String(burst.count),
            ]
            if phase == "closed" {
                details["first"] = AuditChain.timestamp(burst.first)
                details["last"] = AuditChain.timestamp(burst.last)
            }
            let tenant = burst.key.tenant
            audit.record(
                burst.key.kind, actor: "node:\(nodeID)", tenant: tenant == "-" || tenant == "*" ? nil : tenant,
                details: details)
        }
        return lines
    }

    private func log(_ lines: [SecurityEventWindow.Line]) {
        for line in lines {
            let (burst, phase) = line.burstAndPhase
            let tenant = burst.key.tenant
            logger.warning(
                "security event",
                metadata: [
                    "kind": "\(burst.key.kind)", "tenant": "\(tenant)", "source": "\(burst.key.source)",
                    "detail": "\(burst.detail)", "burst": "\(phase)", "count": "\(burst.count)",
                ])
        }
    }
}

/// Closes security-event windows on the node's clock, so a burst's count is written when its window
/// ends even if no other event arrives; closes the last one at shutdown.
struct SecurityEventFlush: Service {
    static let interval = 5.0
    let events: SecurityEvents

    func run() async throws {
        await cancelWhenGracefulShutdown { [events] in
            while (try? await events.clock.sleep(seconds: Self.interval)) != nil { events.flush() }
        }
        events.close()
    }
}

extension SecurityEventWindow.Line {
    fileprivate var burstAndPhase: (SecurityEventWindow.Burst, String) {
        switch self {
        case .started(let burst): (burst, "started")
        case .closed(let burst): (burst, "closed")
        }
    }
}
