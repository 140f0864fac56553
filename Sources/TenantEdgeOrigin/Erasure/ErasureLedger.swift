import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// Which tenants were erased, by whom and when, and when each node confirmed it had deleted the
/// tenant's data (GDPR article 17 evidence). `<state_dir>/erasures.json`, written durably.
final class ErasureLedger: Sendable {
    typealias Record = ErasureRecord

    private let path: String
    private let clock: any CacheClock
    private let records: Mutex<[String: Record]>  // tenant → its erasure

    init(stateDirectory: String, clock: any CacheClock) throws(EdgeError) {
        path = stateDirectory + "/erasures.json"
        self.clock = clock
        var loaded: [String: Record] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            loaded = try StableJSON.decode([String: Record].self, from: Array(data), what: path)
        }
        records = Mutex(loaded)
    }

    func requested(tenant: String, by actor: String) throws(EdgeError) {
        let now = AuditChain.timestamp(clock.now())
        try change { $0[tenant] = Record(requestedAt: now, requestedBy: actor, confirmed: [:]) }
    }

    /// Records a node's confirmation; false when no erasure of that tenant was asked for.
    func confirmed(tenant: String, node: String) throws(EdgeError) -> Bool {
        let now = AuditChain.timestamp(clock.now())
        var known = false
        try change { records in
            guard records[tenant] != nil else { return }
            known = true
            if records[tenant]?.confirmed[node] == nil { records[tenant]?.confirmed[node] = now }
        }
        return known
    }

    /// Every erasure record, by tenant, for the compliance report.
    func all() -> [Record] {
        records.withLock { records in
            records.keys.sorted().compactMap { tenant in
                records[tenant].map { record in
                    var listed = record
                    listed.tenant = tenant
                    return listed
                }
            }
        }
    }

    /// The record as JSON text, or nil.
    func json(tenant: String) -> String? {
        guard var record = records.withLock({ $0[tenant] }) else { return nil }
        record.tenant = tenant
        return (try? StableJSON.encode(record, what: "the erasure record")).map { String(decoding: $0, as: UTF8.self) }
    }

    private func change(_ body: (inout [String: Record]) -> Void) throws(EdgeError) {
        try records.withLock { records throws(EdgeError) in
            var next = records
            body(&next)
            // Nothing is written unless it encoded: the evidence is replaced only by a whole ledger.
            try DurableFile.write(try StableJSON.encode(next, what: "\(path): the erasure ledger"), to: path)
            records = next
        }
    }
}
