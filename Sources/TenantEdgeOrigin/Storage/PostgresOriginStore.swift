import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
import TenantEdgeCore

/// The shared store (`storage.postgres`): PostgreSQL through postgres-nio, which several origin
/// replicas use at once. Every write transaction first locks the one row of `te_log_counter`
/// (`SELECT … FOR UPDATE`), so writers from every replica take turns: sequence numbers are given
/// out inside the transaction that inserts the events, commit in the order they were given, and no
/// reader can see number N+1 before N. A commit also notifies `te_changes` (delivered at commit),
/// which the other replicas listen to (`changes()`), so their long polls wake within milliseconds.
/// The schema is migrated at start under an advisory lock, so two replicas starting together do not
/// both migrate.
///
/// The client's connection pool runs in a task of its own until `close`.
final class PostgresOriginStore: OriginStore {
    private let client: PostgresClient
    private let pool: Task<Void, Never>
    private let retention: Int
    private let logger: Logger
    let endpoint: PostgresEndpoint
    /// The longest any operation may take; a write waits at most one second less for its turn.
    let operationSeconds: Int

    /// Advisory lock key of the migrations ("te" in ASCII, then 1).
    static let migrationLock: Int64 = 0x7465_0001

    static func open(
        _ settings: OriginStorage.Postgres, retention: Int, logger: Logger,
        operationSeconds: Int = defaultOperationSeconds
    ) async throws(EdgeError) -> PostgresOriginStore {
        guard let endpoint = PostgresEndpoint(parsing: settings.url) else {
            throw EdgeError(
                .invalidConfig, "storage.postgres.url: must be postgres://user[:password]@host[:port]/database")
        }
        let tls: PostgresClient.Configuration.TLS
        switch settings.tls {
        case .disable: tls = .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(configuration)
        case .verify:
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile { configuration.trustRoots = .file(caFile) }
            tls = .require(configuration)
        }
        var configuration = PostgresClient.Configuration(
            host: endpoint.host, port: endpoint.port, username: endpoint.user, password: endpoint.password,
            database: endpoint.database, tls: tls)
        configuration.options.maximumConnections = settings.poolSize
        configuration.options.connectTimeout = .seconds(5)
        // postgres-nio logs the rows it receives at trace level: registry documents must not reach a log.
        var quieter = logger
        if quieter.logLevel < .debug { quieter.logLevel = .debug }
        let client = PostgresClient(configuration: configuration, backgroundLogger: quieter)
        let store = PostgresOriginStore(
            client: client, retention: retention, endpoint: endpoint, logger: quieter,
            operationSeconds: max(2, operationSeconds))
        do {
            try await store.migrate()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    private init(
        client: PostgresClient, retention: Int, endpoint: PostgresEndpoint, logger: Logger, operationSeconds: Int
    ) {
        self.operationSeconds = operationSeconds
        self.client = client
        self.retention = retention
        self.endpoint = endpoint
        self.logger = logger
        pool = Task { await client.run() }
    }

    private func migrate() async throws(EdgeError) {
        let endpoint = self.endpoint
        try await guarded("migrate", deadline: false) { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS te_schema (version INTEGER NOT NULL)", logger: logger)
                var found = 0
                for try await version in try await connection.query("SELECT version FROM te_schema", logger: logger)
                    .decode(Int.self)
                {
                    found = max(found, version)
                }
                guard found <= StoreSchema.version else {
                    throw EdgeError(
                        .invalidConfig,
                        "\(endpoint): schema version \(found) is newer than this origin's \(StoreSchema.version);"
                            + " run a newer origin")
                }
                for version in (found + 1)..<(StoreSchema.version + 1) {
                    for statement in StoreSchema.migration(to: version, dialect: .postgres) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query("DELETE FROM te_schema", logger: logger)
                    try await connection.query("INSERT INTO te_schema (version) VALUES (\(version))", logger: logger)
                }
            }
        }
    }

    func write<Value: Sendable>(
        reading names: [String], publishedAt: String,
        _ change: @escaping @Sendable ([String: String]) throws(EdgeError) -> (StoreWrite, Value)
    ) async throws(EdgeError) -> (value: Value, events: [InvalidationEvent]) {
        let retention = self.retention
        let lockWait = "SET LOCAL lock_timeout = '\(operationSeconds - 1)s'"
        return try await guarded("write") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                // READ COMMITTED whatever the server's default (a writer that waited for the lock
                // then reads the head the previous one committed), and a stalled writer elsewhere
                // makes this one fail in time rather than wait for ever.
                try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: lockWait), logger: logger)
                // The writers' turn: every write of every replica locks this row first.
                var locked: Int?
                for try await value in try await connection.query(
                    "SELECT head FROM te_log_counter WHERE id = 1 FOR UPDATE", logger: logger
                ).decode(Int.self) {
                    locked = value
                }
                guard var head = locked, head >= 0 else {
                    throw EdgeError(.io, "the store's log counter is missing or negative")
                }
                let current = try await Self.documents(names, on: connection, logger: logger)
                let (write, value) = try change(current)
                for (name, body) in write.documents.sorted(by: { $0.key < $1.key }) {
                    try await connection.query(
                        """
                        INSERT INTO te_documents (name, body) VALUES (\(name), \(body))
                        ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body
                        """, logger: logger)
                }
                var events: [InvalidationEvent] = []
                for purge in write.purges {
                    head += 1
                    let event = InvalidationEvent(seq: head, purge: purge, publishedAt: publishedAt)
                    let text = try event.json.canonicalText
                    try await connection.query(
                        "INSERT INTO te_events (seq, body) VALUES (\(head), \(text))", logger: logger)
                    events.append(event)
                }
                if !events.isEmpty {
                    try await connection.query("UPDATE te_log_counter SET head = \(head) WHERE id = 1", logger: logger)
                    try await connection.query("DELETE FROM te_events WHERE seq <= \(head - retention)", logger: logger)
                    try await connection.query(
                        "SELECT pg_notify('te_changes', \("events:" + String(head)))", logger: logger)
                }
                if !write.documents.isEmpty {
                    try await connection.query("SELECT pg_notify('te_changes', 'documents')", logger: logger)
                }
                return (value, events)
            }
        }
    }

    func documents(_ names: [String]) async throws(EdgeError) -> [String: String] {
        try await guarded("read") { [client, logger] in
            try await client.withConnection { connection in
                try await Self.documents(names, on: connection, logger: logger)
            }
        }
    }

    func events(after seq: Int, limit: Int) async throws(EdgeError) -> [InvalidationEvent] {
        let endpoint = self.endpoint
        return try await guarded("read") { [client, logger] in
            var found: [InvalidationEvent] = []
            for try await (number, body) in try await client.query(
                "SELECT seq, body FROM te_events WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)", logger: logger
            ).decode((Int, String).self) {
                found.append(try StoredEvent.decode(seq: number, body: body, in: "\(endpoint)"))
            }
            return found
        }
    }

    func head() async throws(EdgeError) -> Int {
        try await guarded("read") { [client, logger] in
            var head = 0
            for try await value in try await client.query(
                "SELECT head FROM te_log_counter WHERE id = 1", logger: logger
            ).decode(Int.self) {
                head = value
            }
            return head
        }
    }

    func importState(documents: [String: String], events: [InvalidationEvent]) async throws(EdgeError) {
        let endpoint = self.endpoint
        try await guarded("import", deadline: false) { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                var head = 0
                for try await value in try await connection.query(
                    "SELECT head FROM te_log_counter WHERE id = 1 FOR UPDATE", logger: logger
                ).decode(Int.self) {
                    head = value
                }
                var held = 0
                for try await count in try await connection.query(
                    "SELECT count(*)::BIGINT FROM te_documents", logger: logger
                ).decode(Int.self) {
                    held = count
                }
                guard head == 0, held == 0 else {
                    throw EdgeError(.io, "\(endpoint) already holds state; nothing imported")
                }
                for (name, body) in documents {
                    try await connection.query(
                        "INSERT INTO te_documents (name, body) VALUES (\(name), \(body))", logger: logger)
                }
                for event in events {
                    let text = try event.json.canonicalText
                    try await connection.query(
                        "INSERT INTO te_events (seq, body) VALUES (\(event.seq), \(text))", logger: logger)
                }
                if let last = events.last {
                    try await connection.query(
                        "UPDATE te_log_counter SET head = \(last.seq) WHERE id = 1", logger: logger)
                }
            }
        }
    }

    /// What other writers commit, as PostgreSQL notifies it (`te_changes`, sent at commit): a
    /// connection of its own listens, and after each (re)connection `.resync` says "read it all
    /// again", since what was committed while nobody listened was never notified.
    func changes() -> AsyncStream<StoreChange>? {
        let (client, logger) = (self.client, self.logger)
        return AsyncStream(bufferingPolicy: .bufferingNewest(64)) { continuation in
            let task = Task {
                while !Task.isCancelled {
                    do {
                        try await client.withConnection { connection in
                            try await connection.listen(on: "te_changes") { notifications in
                                continuation.yield(.resync)
                                for try await notification in notifications {
                                    continuation.yield(notification.payload == "documents" ? .documents : .events)
                                }
                            }
                        }
                    } catch {
                        logger.debug("the store's change notifications stopped; listening again")
                    }
                    try? await Task.sleep(for: .milliseconds(500))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func close() async {
        pool.cancel()
        _ = await pool.value
    }

    private static func documents(
        _ names: [String], on connection: PostgresConnection, logger: Logger
    ) async throws -> [String: String] {
        guard !names.isEmpty else { return [:] }
        var found: [String: String] = [:]
        for try await (name, body) in try await connection.query(
            "SELECT name, body FROM te_documents WHERE name = ANY(\(names))", logger: logger
        ).decode((String, String).self) {
            found[name] = body
        }
        return found
    }

    /// Runs `body`, turning what PostgreSQL or the pool throws into an error that names the store and
    /// the SQLSTATE (never a query's values, which may be tenant data or keys).
    ///
    /// Every operation ends within `operationSeconds`: while PostgreSQL is down, the pool waits for a
    /// connection without end, and a publish must be refused (`503`) rather than hang. A write cut
    /// off after its commit was sent may still have committed; it is reported as failed, and the
    /// publisher's retry appends the purge again, which purges are idempotent enough to allow.
    /// `deadline: false` for the start-up work (migrations, an import of a large file log), which
    /// takes what it takes.
    private func guarded<T: Sendable>(
        _ what: String, deadline: Bool = true, _ body: @escaping @Sendable () async throws -> T
    ) async throws(EdgeError) -> T {
        let endpoint = self.endpoint
        let seconds = operationSeconds
        guard deadline else {
            do { return try await body() } catch { throw Self.described(error, what: what, endpoint: endpoint) }
        }
        do {
            // Not a task group: a group waits for its children, and a pool lease that never ends
            // would keep it waiting; the work is cancelled and left to finish on its own instead.
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let answer = FirstAnswer(continuation)
                let work = Task {
                    do { _ = answer.give(.success(try await body())) } catch { _ = answer.give(.failure(error)) }
                }
                let timer = Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    let late = EdgeError(.io, "\(endpoint): \(what) did not finish within \(seconds) s")
                    if answer.give(.failure(late)) { work.cancel() }
                }
                answer.whenGiven { timer.cancel() }
            }
        } catch {
            throw Self.described(error, what: what, endpoint: endpoint)
        }
    }

    /// The longest a store operation may take unless told otherwise (a write waits at most
    /// `lock_timeout`, one second less, for its turn).
    static let defaultOperationSeconds = 5

    /// Our own errors pass as they are (also from inside a transaction, which postgres-nio wraps);
    /// PostgreSQL's are named by SQLSTATE.
    private static func described(_ error: any Error, what: String, endpoint: PostgresEndpoint) -> EdgeError {
        switch error {
        case let error as EdgeError: return error
        case let error as PostgresTransactionError:
            if let inner = error.closureError ?? error.beginError ?? error.commitError {
                return described(inner, what: what, endpoint: endpoint)
            }
            return EdgeError(.io, "\(endpoint): \(what) failed (transaction)")
        case let error as PSQLError:
            let state = error.serverInfo?[.sqlState] ?? error.code.description
            return EdgeError(.io, "\(endpoint): \(what) failed (\(state))")
        default:
            return EdgeError(.io, "\(endpoint): \(what) failed (\(type(of: error)))")
        }
    }
}

/// Resumes a continuation with the first result given, and ignores the rest (work against a deadline).
private final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation: CheckedContinuation<T, any Error>
    private let state = Mutex<(answered: Bool, then: (@Sendable () -> Void)?)>((false, nil))

    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = continuation }

    /// True for the result that resumed the continuation.
    func give(_ result: Result<T, any Error>) -> Bool {
        let then = state.withLock { state -> (@Sendable () -> Void)?? in
            guard !state.answered else { return .none }
            state.answered = true
            return .some(state.then)
        }
        guard case .some(let follow) = then else { return false }
        continuation.resume(with: result)
        follow?()
        return true
    }

    /// Runs `body` once answered (at once if already): the timer is cancelled when the work wins.
    func whenGiven(_ body: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.answered { return true }
            state.then = body
            return false
        }
        if now { body() }
    }
}
