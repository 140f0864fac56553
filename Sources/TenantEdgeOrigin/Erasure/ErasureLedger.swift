import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// Which tenants were erased, by whom and when, and when each node confirmed it had deleted the
/// tenant's data (GDPR article 17 evidence). The store's `erasures` document; each change re-reads
/// it in its write transaction, so replicas sharing a store never overwrite each other's records.
/// Reads come from the copy in memory, refreshed by every change made here and by `reload`.
final class ErasureLedger: Sendable {
    typealias Record = ErasureRecord

    private let store: any OriginStore
    private let clock: any CacheClock
    private let records: Mutex<[String: Record]>  // tenant → its erasure

    static func open(store: any OriginStore, clock: any CacheClock) async throws(EdgeError) -> ErasureLedger {
        let ledger = ErasureLedger(store: store, clock: clock)
        try await ledger.reload()
        return ledger
    }

    private init(store: any OriginStore, clock: any CacheClock) {
        self.store = store
        self.clock = clock
        records = Mutex([:])
    }

    /// Takes the stored ledger as it is now.
    func reload() async throws(EdgeError) {
        let stored = try await store.documents([StoreDocument.erasures])
        committed(try Self.decode(stored[StoreDocument.erasures]))
    }

    /// Records that `tenant`'s erasure was asked for, as part of the write that removes it
    /// (`TenantRegistry.remove`): the ledger document with the request added.
    static func requesting(
        _ tenant: String, by actor: String, at time: String, in stored: String?
    ) throws(EdgeError) -> (document: String, records: [String: Record]) {
        var records = try decode(stored)
        records[tenant] = Record(requestedAt: time, requestedBy: actor, confirmed: [:])
        return (try encode(records), records)
    }

    /// Takes the records a write committed, merged with the copy: writes finish in any order, and
    /// records only grow (a request, then confirmations), so a later one is never lost to an earlier.
    func committed(_ next: [String: Record]) {
        records.withLock { current in
            for (tenant, record) in next {
                guard let held = current[tenant], held.requestedAt >= record.requestedAt else {
                    current[tenant] = record
                    continue
                }
                if held.requestedAt == record.requestedAt {
                    current[tenant]?.confirmed.merge(record.confirmed) { first, _ in first }
                }
            }
        }
    }

    /// Records a node's confirmation; false when no erasure of that tenant was asked for.
    func confirmed(tenant: String, node: String) async throws(EdgeError) -> Bool {
        let now = AuditChain.timestamp(clock.now())
        let (outcome, _) = try await store.write(reading: [StoreDocument.erasures], publishedAt: now) {
            stored throws(EdgeError) -> (StoreWrite, (known: Bool, records: [String: Record])) in
            var records = try Self.decode(stored[StoreDocument.erasures])
            guard records[tenant] != nil else { return (StoreWrite(), (false, records)) }
            if records[tenant]?.confirmed[node] == nil { records[tenant]?.confirmed[node] = now }
            return (StoreWrite(documents: [StoreDocument.erasures: try Self.encode(records)]), (true, records))
        }
        committed(outcome.records)
        return outcome.known
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

    static func decode(_ document: String?) throws(EdgeError) -> [String: Record] {
        guard let document else { return [:] }
        return try StableJSON.decode([String: Record].self, from: Array(document.utf8), what: "the erasure ledger")
    }

    /// Nothing is stored unless it encoded: the evidence is replaced only by a whole ledger.
    static func encode(_ records: [String: Record]) throws(EdgeError) -> String {
        String(decoding: try StableJSON.encode(records, what: "the erasure ledger"), as: UTF8.self)
    }
}
