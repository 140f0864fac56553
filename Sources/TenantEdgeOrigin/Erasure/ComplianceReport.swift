import Foundation
import TenantEdgeCore
import TenantEdgeHTTP

/// `GET /v1/report/compliance` (admin): per tenant, encryption, key versions and their ages,
/// residency, the last purge; every erasure with who asked and each node's confirmation; and
/// whether the origin's audit chain verifies. Nothing secret: no key material, no token.
enum ComplianceReport {
    static func json(registry: TenantRegistry, log: InvalidationLog, erasures: ErasureLedger, audit: AuditLog, now: Double) -> String {
        let lastEvents = log.lastEvents()
        let tenants: [[String: Any]] = registry.keyReport().map { entry in
            var object: [String: Any] = [
                "id": entry.tenant.id,
                "encrypted": entry.sealedForAllRegions,
                "residency": entry.tenant.residency,
                "key_versions": entry.keys.map { key -> [String: Any] in
                    let created = ISO8601DateFormatter.withFractions.date(from: key.createdAt)?.timeIntervalSince1970 ?? now
                    return ["version": Int(key.version), "created_at": key.createdAt, "age_days": Int((now - created) / 86_400)]
                },
            ]
            if let event = lastEvents[entry.tenant.id] { object["last_purge"] = ["seq": event.seq, "published_at": event.publishedAt] }
            return object
        }
        var chain: [String: Any]
        switch audit.verify() {
        case .valid(let entries): chain = ["valid": true, "entries": entries]
        case .broken(let line, let reason): chain = ["valid": false, "line": line, "reason": reason]
        }
        let report: [String: Any] = ["generated_at": AuditChain.timestamp(now), "tenants": tenants, "erasures": erasures.all(), "audit_chain": chain]
        let data = (try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
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
