import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import TenantEdgeCore

/// The embedded store: one SQLite file in `state_dir` (`origin.sqlite`), through sqlite-nio. WAL
/// with `synchronous=FULL`, so a commit is on disk before the write returns (an event is
/// acknowledged only once durable). One connection; writes are serialized by `WriterTurn`, since
/// an actor alone would interleave two transactions at their suspension points.
actor SQLiteOriginStore: OriginStore {
    private let connection: SQLiteConnection
    private let retention: Int
    private let turn = WriterTurn()
    let path: String

    static func open(directory: String, retention: Int, logger: Logger) async throws(EdgeError) -> SQLiteOriginStore {
        let path = directory + "/origin.sqlite"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EdgeError(.io, "state_dir: cannot create \(directory)")
        }
        // Readable by the origin's user alone (the registry holds tenants' Redis URLs): SQLite gives
        // its journal files the database file's mode.
        let made = Glibc.open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if made >= 0 { Glibc.close(made) }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw EdgeError(.io, "state_dir: cannot open \(path)")
        }
        let store = SQLiteOriginStore(connection: connection, retention: retention, path: path)
        do {
            try await store.prepare()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    private init(connection: SQLiteConnection, retention: Int, path: String) {
        self.connection = connection
        self.retention = retention
        self.path = path
    }

    /// Durability settings, then the schema's migrations in one transaction each.
    private func prepare() async throws(EdgeError) {
        try await run("PRAGMA journal_mode=WAL")
        try await run("PRAGMA synchronous=FULL")
        // Old versions of the registry (sealed keys of erased tenants among them) are overwritten,
        // not left in free pages.
        try await run("PRAGMA secure_delete=ON")
        try await run("CREATE TABLE IF NOT EXISTS te_schema (version INTEGER NOT NULL)")
        let found = try await rows("SELECT version FROM te_schema").first?.column("version")?.integer ?? 0
        guard found <= StoreSchema.version else {
            throw EdgeError(
                .invalidConfig,
                "\(path): schema version \(found) is newer than this origin's \(StoreSchema.version);"
                    + " run a newer origin")
        }
        for version in (found + 1)..<(StoreSchema.version + 1) {
            try await transaction { () async throws(EdgeError) in
                for statement in StoreSchema.migration(to: version, dialect: .sqlite) { try await run(statement) }
                try await run("DELETE FROM te_schema")
                try await run("INSERT INTO te_schema (version) VALUES (?)", [.integer(version)])
            }
        }
    }

    func write<Value: Sendable>(
        reading names: [String], publishedAt: String,
        _ change: @escaping @Sendable ([String: String]) throws(EdgeError) -> (StoreWrite, Value)
    ) async throws(EdgeError) -> (value: Value, events: [InvalidationEvent]) {
        try await transaction { () async throws(EdgeError) -> (value: Value, events: [InvalidationEvent]) in
            let current = try await readDocuments(names)
            let (write, value) = try change(current)
            for (name, body) in write.documents.sorted(by: { $0.key < $1.key }) {
                try await run(
                    "INSERT INTO te_documents (name, body) VALUES (?, ?)"
                        + " ON CONFLICT(name) DO UPDATE SET body = excluded.body",
                    [.text(name), .text(body)])
            }
            var events: [InvalidationEvent] = []
            if !write.purges.isEmpty {
                var head = try await readHead()
                for purge in write.purges {
                    head += 1
                    let event = InvalidationEvent(seq: head, purge: purge, publishedAt: publishedAt)
                    try await run(
                        "INSERT INTO te_events (seq, body) VALUES (?, ?)",
                        [.integer(head), .text(try event.json.canonicalText)])
                    events.append(event)
                }
                try await run("UPDATE te_log_counter SET head = ? WHERE id = 1", [.integer(head)])
                try await run("DELETE FROM te_events WHERE seq <= ?", [.integer(head - retention)])
            }
            return (value, events)
        }
    }

    func documents(_ names: [String]) async throws(EdgeError) -> [String: String] {
        try await inTurn { () async throws(EdgeError) in try await readDocuments(names) }
    }

    func events(after seq: Int, limit: Int) async throws(EdgeError) -> [InvalidationEvent] {
        let found = try await inTurn { () async throws(EdgeError) in
            try await rows(
                "SELECT seq, body FROM te_events WHERE seq > ? ORDER BY seq LIMIT ?", [.integer(seq), .integer(limit)])
        }
        return try found.map { row throws(EdgeError) in
            try StoredEvent.decode(seq: row.column("seq")?.integer, body: row.column("body")?.string, in: path)
        }
    }

    func head() async throws(EdgeError) -> Int {
        try await inTurn { () async throws(EdgeError) in try await readHead() }
    }

    func importState(documents: [String: String], events: [InvalidationEvent]) async throws(EdgeError) {
        try await transaction { () async throws(EdgeError) in
            let held = try await rows("SELECT count(*) AS n FROM te_documents").first?.column("n")?.integer ?? 0
            guard held == 0, try await readHead() == 0 else {
                throw EdgeError(.io, "\(path) already holds state; nothing imported")
            }
            for (name, body) in documents {
                try await run("INSERT INTO te_documents (name, body) VALUES (?, ?)", [.text(name), .text(body)])
            }
            for event in events {
                try await run(
                    "INSERT INTO te_events (seq, body) VALUES (?, ?)",
                    [.integer(event.seq), .text(try event.json.canonicalText)])
            }
            if let last = events.last {
                try await run("UPDATE te_log_counter SET head = ? WHERE id = 1", [.integer(last.seq)])
            }
        }
    }

    /// One process writes the file: there is nothing to follow.
    nonisolated func changes() -> AsyncStream<StoreChange>? { nil }

    /// Waits for the operation in progress (the actor is reentrant: a close must not cut a transaction).
    func close() async {
        await turn.acquire()
        try? await connection.close()
        await turn.release()
    }

    // MARK: helpers

    private func readHead() async throws(EdgeError) -> Int {
        guard let head = try await rows("SELECT head FROM te_log_counter WHERE id = 1").first?.column("head")?.integer
        else { throw EdgeError(.io, "\(path): the log counter is missing") }
        return head
    }

    private func readDocuments(_ names: [String]) async throws(EdgeError) -> [String: String] {
        var found: [String: String] = [:]
        for name in names {
            if let body = try await rows("SELECT body FROM te_documents WHERE name = ?", [.text(name)]).first?
                .column("body")?.string
            {
                found[name] = body
            }
        }
        return found
    }

    /// `body` between `BEGIN IMMEDIATE` and `COMMIT` (or `ROLLBACK` when it throws), one at a time.
    private func transaction<T: Sendable>(_ body: () async throws(EdgeError) -> T) async throws(EdgeError) -> T {
        try await inTurn { () async throws(EdgeError) -> T in
            try await run("BEGIN IMMEDIATE")
            do throws(EdgeError) {
                let value = try await body()
                try await run("COMMIT")
                return value
            } catch {
                try? await run("ROLLBACK")
                throw error
            }
        }
    }

    /// `body` alone on the connection: a read never sees a write's uncommitted rows (one connection
    /// shares its open transaction), and two transactions never interleave.
    private func inTurn<T: Sendable>(_ body: () async throws(EdgeError) -> T) async throws(EdgeError) -> T {
        await turn.acquire()
        let outcome: Result<T, EdgeError>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        await turn.release()
        return try outcome.get()
    }

    private func run(_ sql: String, _ binds: [SQLiteData] = []) async throws(EdgeError) {
        _ = try await rows(sql, binds)
    }

    private func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws(EdgeError) -> [SQLiteRow] {
        do {
            return try await connection.query(sql, binds)
        } catch {
            throw EdgeError(.io, "\(path): the store could not be written or read (\(Self.reason(error)))")
        }
    }

    /// SQLite's own reason (disk full, locked, corrupt): names no value.
    private static func reason(_ error: any Error) -> String {
        (error as? SQLiteError).map { "\($0.reason)" } ?? "\(type(of: error))"
    }
}

/// One event row back to an event; a row that is not one is an error naming the store, not a skip.
enum StoredEvent {
    static func decode(seq: Int?, body: String?, in store: String) throws(EdgeError) -> InvalidationEvent {
        guard let seq, let body, let json = JSONValue.parse(Array(body.utf8)),
            let event = try? InvalidationEvent(json: json), event.seq == seq
        else { throw EdgeError(.io, "\(store): event \(seq.map(String.init) ?? "?") is not an invalidation event") }
        return event
    }
}

/// Turns for writers inside one process: FIFO, never lost.
actor WriterTurn {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
