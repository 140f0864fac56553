import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// Which tenants were erased, by whom and when, and when each node confirmed it had deleted the
/// tenant's data (GDPR article 17 evidence). `<state_dir>/erasures.json`, written durably.
final class ErasureLedger: Sendable {
    private let path: String
    private let clock: any CacheClock
    private let records: Mutex<[String: [String: Any]]>  // tenant → {requested_at, requested_by, confirmed: {node: at}}

    init(stateDirectory: String, clock: any CacheClock) throws(EdgeError) {
        path = stateDirectory + "/erasures.json"
        self.clock = clock
        var loaded: [String: [String: Any]] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else {
                throw EdgeError(.io, "\(path): not an erasure ledger")
            }
            loaded = object
        }
        records = Mutex(loaded)
    }

    func requested(tenant: String, by actor: String) throws(EdgeError) {
        let now = AuditChain.timestamp(clock.now())
        try change { $0[tenant] = ["requested_at": now, "requested_by": actor, "confirmed": [String: String]()] }
    }

    /// Records a node's confirmation; false when no erasure of that tenant was asked for.
    func confirmed(tenant: String, node: String) throws(EdgeError) -> Bool {
        let now = AuditChain.timestamp(clock.now())
        var known = false
        try change { records in
            guard var record = records[tenant] else { return }
            known = true
            var confirmed = record["confirmed"] as? [String: String] ?? [:]
            if confirmed[node] == nil { confirmed[node] = now }
            record["confirmed"] = confirmed
            records[tenant] = record
        }
        return known
    }

    /// Every erasure record, for the compliance report.
    func all() -> [[String: Any]] {
        records.withLock { records in records.keys.sorted().map { tenant in records[tenant]!.merging(["tenant": tenant]) { $1 } } }
    }

    /// The record as JSON text, or nil.
    func json(tenant: String) -> String? {
        records.withLock { records in
            guard var record = records[tenant] else { return nil }
            record["tenant"] = tenant
            return (try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    private func change(_ body: (inout [String: [String: Any]]) -> Void) throws(EdgeError) {
        try records.withLock { records throws(EdgeError) in
            var next = records
            body(&next)
            // Nothing is written unless it encoded: an empty ledger must never replace the evidence.
            guard let data = try? JSONSerialization.data(withJSONObject: next, options: [.sortedKeys]) else {
                throw EdgeError(.io, "\(path): the erasure ledger could not be encoded; nothing written")
            }
            try DurableFile.write(Array(data), to: path)
            records = next
        }
    }
}
