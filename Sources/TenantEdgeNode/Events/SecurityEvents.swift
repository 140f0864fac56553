import Logging
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// The node's security events and the warnings any client can provoke, each counted every time but
/// written (log and audit) at most a few lines a minute per kind (`SecurityEventThrottle`), the
/// next written line saying how many were left out: a flood cannot fill the disk or bury the rest.
final class SecurityEvents: Sendable {
    private let nodeID: String
    private let region: String
    private let metrics: EdgeMetrics
    private let audit: AuditLog
    private let clock: any CacheClock
    private let logger: Logger
    /// How many audit and log lines security events may write.
    private let securityLines = Mutex(SecurityEventThrottle())
    /// The same bound for warnings (an upstream that fails under a flood).
    private let warningLines = Mutex(SecurityEventThrottle())
    /// When each tenant's last `residency_bypass` was audited (seconds, the clock's).
    private let residencyAudited = Mutex<[String: Double]>([:])
    /// Every security event since start, written or not.
    let count = Atomic<Int>(0)

    init(nodeID: String, region: String, metrics: EdgeMetrics, audit: AuditLog, clock: any CacheClock, logger: Logger) {
        self.nodeID = nodeID
        self.region = region
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

    /// A security event: counted in metrics every time; logged and audited with the tenant id only
    /// (never key material or bodies). Throttled per kind and tenant (tenant ids come from the
    /// config, so the set is bounded): one tenant's flood never hides another's events.
    func record(_ kind: String, tenant: String, detail: String) {
        metrics.recordSecurityEvent(kind)
        count.add(1, ordering: .relaxed)
        let now = clock.now()
        let key = kind + ":" + tenant
        guard case .write(let suppressed) = securityLines.withLock({ $0.admit(kind: key, now: now) }) else { return }
        var details = ["detail": detail]
        if suppressed > 0 { details["suppressed_before"] = String(suppressed) }
        audit.record(kind, actor: "node:\(nodeID)", tenant: tenant == "-" ? nil : tenant, details: details)
        logger.warning(
            "security event",
            metadata: [
                "kind": "\(kind)", "tenant": "\(tenant)", "detail": "\(detail)", "suppressed_before": "\(suppressed)",
            ])
    }

    /// A request of a tenant whose residency excludes this region was served without storing:
    /// audited as `residency_bypass`, at most once a minute per tenant (the log records that it
    /// happens, not every request).
    func residencyBypassed(_ tenant: String, clientRegion: String?) {
        let now = clock.now()
        let due = residencyAudited.withLock { audited in
            guard now - (audited[tenant] ?? -.infinity) >= 60 else { return false }
            audited[tenant] = now
            return true
        }
        guard due else { return }
        var details = ["region": region]
        if let clientRegion { details["preferred_region"] = clientRegion }
        audit.record("residency_bypass", actor: "node:\(nodeID)", tenant: tenant, details: details)
    }
}
