import TenantEdgeCore

/// The origin's durable state behind one interface (issue 14): named documents (the registry with
/// its sealed keys, the erasure ledger, each region's signed bundle) and the invalidation log. A
/// write reads the documents it names, and what it stores and the events it appends become durable
/// together or not at all. Two implementations: `SQLiteOriginStore`, one file on the origin's
/// machine (the default), and `PostgresOriginStore`, which several origin replicas share.
///
/// Writers are serialized (one at a time across every replica of one database), and a write takes
/// its sequence numbers inside its transaction, so numbers are gap-free and become visible in order:
/// a poller can never skip a number that commits later.
protocol OriginStore: Sendable {
    /// Runs `change` on the current `names` (absent ones are missing from the dictionary) in one
    /// write transaction; its documents replace the stored ones and its purges are appended as events
    /// stamped `publishedAt`, all committed together, or nothing is when `change` or the commit throws.
    func write<Value: Sendable>(
        reading names: [String], publishedAt: String,
        _ change: @escaping @Sendable ([String: String]) throws(EdgeError) -> (StoreWrite, Value)
    ) async throws(EdgeError) -> (value: Value, events: [InvalidationEvent])

    /// The documents of `names` as committed now.
    func documents(_ names: [String]) async throws(EdgeError) -> [String: String]

    /// Up to `limit` events after `seq`, in order.
    func events(after seq: Int, limit: Int) async throws(EdgeError) -> [InvalidationEvent]

    /// The last sequence number given out (0 before the first event).
    func head() async throws(EdgeError) -> Int

    /// Loads state written by an earlier version (documents and events with their numbers) into an
    /// empty store, in one transaction; refuses a store that holds anything.
    func importState(documents: [String: String], events: [InvalidationEvent]) async throws(EdgeError)

    /// What other writers commit, for a replica's copies (`StoreFollower`); nil when no other
    /// writer can exist (the embedded store is one process's).
    func changes() -> AsyncStream<StoreChange>?

    func close() async
}

/// A change another writer committed.
enum StoreChange: Sendable {
    /// New events.
    case events
    /// Changed documents (registry, ledger, bundles).
    case documents
    /// Anything may have changed (notifications were not heard for a while): read everything again.
    case resync
}

/// What a write stores: whole documents (each replaces the stored one) and purges to append.
struct StoreWrite: Sendable {
    var documents: [String: String] = [:]
    var purges: [PurgeRequest] = []
}

/// Document names.
enum StoreDocument {
    static let registry = "registry"
    static let erasures = "erasures"
    static func bundle(region: String) -> String { "bundle/\(region)" }
}

/// The schema both stores migrate to, version by version; a store refuses a database whose
/// version is newer than the last it knows (an older origin must not write a newer layout).
enum StoreSchema {
    static let version = 1

    /// Statements of each version, for `dialect`.
    static func migration(to version: Int, dialect: Dialect) -> [String] {
        switch version {
        case 1:
            let body = dialect == .postgres ? "TEXT" : "TEXT"
            let seq = dialect == .postgres ? "BIGINT" : "INTEGER"
            return [
                "CREATE TABLE te_log_counter (id INTEGER PRIMARY KEY CHECK (id = 1), head \(seq) NOT NULL)",
                "INSERT INTO te_log_counter (id, head) VALUES (1, 0)",
                "CREATE TABLE te_events (seq \(seq) PRIMARY KEY, body \(body) NOT NULL)",
                "CREATE TABLE te_documents (name TEXT PRIMARY KEY, body \(body) NOT NULL)",
            ]
        default: return []
        }
    }

    enum Dialect { case sqlite, postgres }
}
