import Foundation
import TenantEdgeCore
import TenantEdgeHTTP

/// The compliance report (`GET /v1/report/compliance`, admin) built from the origin's state.
extension ComplianceReport {
    static func json(
        registry: TenantRegistry, log: InvalidationLog, erasures: ErasureLedger, audit: AuditLog,
        now: Double
    ) throws(EdgeError) -> String {
        let lastEvents = log.lastEvents()
        let tenants = registry.keyReport().map { entry in
            Tenant(
                id: entry.tenant.id, encrypted: entry.sealedForAllRegions, residency: entry.tenant.residency,
                keyVersions: entry.keys.map { key in
                    let created =
                        ISO8601DateFormatter.withFractions.date(from: key.createdAt)?.timeIntervalSince1970 ?? now
                    // Clamped: a created_at far off (an edited registry) cannot overflow the count.
                    let days = max(-1e9, min(1e9, ((now - created) / 86_400).rounded(.towardZero)))
                    return KeyVersion(
                        version: key.version, createdAt: key.createdAt, ageDays: Int(days.isFinite ? days : 0))
                },
                lastPurge: lastEvents[entry.tenant.id].map { LastPurge(seq: $0.seq, publishedAt: $0.publishedAt) })
        }
        let chain: Chain
        switch audit.verify() {
        case .valid(let entries): chain = Chain(valid: true, entries: entries)
        case .broken(let line, let reason): chain = Chain(valid: false, line: line, reason: reason)
        }
        let report = ComplianceReport(
            generatedAt: AuditChain.timestamp(now), tenants: tenants, erasures: erasures.all(),
            auditChain: chain)
        return String(decoding: try StableJSON.encode(report, what: "the compliance report"), as: UTF8.self)
    }
}

extension ISO8601DateFormatter {
    /// Reads the timestamps `AuditChain.timestamp` writes.
    nonisolated(unsafe) static let withFractions: ISO8601DateFormatter = {  // only read after it is made
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
