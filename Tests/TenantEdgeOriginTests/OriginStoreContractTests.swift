import Foundation
import Logging
import NIOPosix
import PostgresNIO
import SQLiteNIO
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeOrigin

/// The storage contract (`OriginStore`), run against both implementations: SQLite in a folder of
/// the test's own, and the suite's PostgreSQL (a database of the test's own, over TLS with the run's
/// certificate, password authentication).
@Suite("Origin store contract", .serialized)
struct OriginStoreContractTests {
    enum Kind: String, CaseIterable, Sendable { case sqlite, postgres }

    /// Opens stores on one fresh database: `open()` makes another (a second replica, or a reopen).
    struct Fixture: Sendable {
        let open: @Sendable () async throws -> any OriginStore
        let directory: String
    }

    static let logger = Logger(label: "test")

    /// `operationSeconds`: the PostgreSQL store's deadline per operation (its default unless a test
    /// is about something else and queues writes on purpose).
    static func fixture(
        _ kind: Kind, retention: Int = 1000,
        operationSeconds: Int = PostgresOriginStore.defaultOperationSeconds
    ) async throws -> Fixture {
        let directory = try temporaryDirectory("te-store")
        switch kind {
        case .sqlite:
            return Fixture(
                open: { try await SQLiteOriginStore.open(directory: directory, retention: retention, logger: logger) },
                directory: directory)
        case .postgres:
            let url = try await freshPostgresDatabase()
            var configured = OriginStorage.Postgres(url: url)
            configured.tls = .verify
            configured.caFile = try TestEnvironment.require("TE_TEST_CA_FILE")
            configured.poolSize = 4
            let settings = configured
            return Fixture(
                open: {
                    try await PostgresOriginStore.open(
                        settings, retention: retention, logger: logger, operationSeconds: operationSeconds)
                },
                directory: directory)
        }
    }

    /// A new database on the suite's PostgreSQL; its URL.
    static func freshPostgresDatabase(on cluster: String = "TE_TEST_POSTGRES_URL") async throws -> String {
        let admin = try #require(PostgresEndpoint(parsing: try TestEnvironment.require(cluster)))
        let name = "te_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
        let client = PostgresClient(
            configuration: .init(
                host: admin.host, port: admin.port, username: admin.user, password: admin.password,
                database: admin.database, tls: .disable),
            backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
            group.cancelAll()
        }
        var url = admin
        url.database = name
        return "postgres://\(url.user):\(url.password ?? "")@\(url.host):\(url.port)/\(name)"
    }

    static func write(_ store: any OriginStore, _ purge: PurgeRequest, documents: [String: String] = [:]) async throws
        -> InvalidationEvent
    {
        let (_, events) = try await store.write(reading: [], publishedAt: "2026-12-05T00:00:00Z") {
            _ throws(EdgeError) in
            (StoreWrite(documents: documents, purges: [purge]), ())
        }
        return try #require(events.first)
    }

    @Test(arguments: Kind.allCases)
    func concurrentWritersGetGapFreeNumbersThatNoReaderSeesOutOfOrder(_ kind: Kind) async throws {
        // This test is about order, not time: writes queue on purpose, so the deadline is 30 s. With
        // the default 5 s, 200 queued at once on a machine busy with the whole suite missed it, and
        // once each 16 and 10 (writes go one at a time through the row lock: each waits for those
        // queued before it, and the suite's CPU-bound tests slowed each write to 115 ms).
        let fixture = try await Self.fixture(kind, operationSeconds: 30)
        // Two stores on one database: for PostgreSQL two replicas, for SQLite two connections to one file.
        let first = try await fixture.open()
        let second = kind == .postgres ? try await fixture.open() : first
        // 200 writes, 10 in flight at a time over both stores (more than both pools' 8 connections, so
        // they contend for the leases and the row lock).
        let writes = 200
        let inFlight = 10
        let seen = try await withThrowingTaskGroup(of: [Int].self) { group in
            let writers = Locked(0)  // the next write to start
            for _ in 0..<inFlight {
                group.addTask {
                    var numbers: [Int] = []
                    while true {
                        let index = writers.modify { next -> Int in
                            defer { next += 1 }
                            return next
                        }
                        guard index < writes else { return numbers }
                        let store = index % 2 == 0 ? first : second
                        numbers.append(
                            try await Self.write(store, PurgeRequest(tenant: "acme", keys: ["/k/\(index)"])).seq)
                    }
                }
            }
            // A poller reading as writers commit: every batch continues exactly where the last ended.
            group.addTask {
                var cursor = 0
                var gaps: [Int] = []
                while cursor < writes {
                    let batch = try await first.events(after: cursor, limit: 50)
                    // Polls as a feed does, not in a tight loop that keeps a pooled connection busy.
                    if batch.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
                    for event in batch {
                        if event.seq != cursor + 1 { gaps.append(event.seq) }
                        cursor = event.seq
                    }
                }
                return gaps.map { -$0 }
            }
            var all: [Int] = []
            for try await result in group { all += result }
            return all
        }
        #expect(seen.filter { $0 < 0 }.isEmpty, "a poller saw a number before an earlier one")
        #expect(seen.filter { $0 > 0 }.sorted() == Array(1...writes), "every number once, none missing")
        #expect(try await first.head() == writes)
        await first.close()
        if kind == .postgres { await second.close() }
    }

    @Test(arguments: Kind.allCases)
    func documentsAndEventsCommitTogetherOrNotAtAll(_ kind: Kind) async throws {
        let fixture = try await Self.fixture(kind)
        let store = try await fixture.open()
        _ = try await Self.write(store, PurgeRequest(tenant: "acme", all: true), documents: ["registry": "one"])
        let failed = await #expect(throws: EdgeError.self) {
            try await store.write(reading: ["registry"], publishedAt: "") {
                current throws(EdgeError) -> (StoreWrite, Void) in
                #expect(current["registry"] == "one")
                throw EdgeError(.badRequest, "refused half way")
            }
        }
        #expect(failed?.message == "refused half way")
        #expect(try await store.documents(["registry"]) == ["registry": "one"])
        #expect(try await store.head() == 1, "no event from the refused write")
        // A document and an event in one write: both or neither, and both now.
        let event = try await Self.write(
            store, PurgeRequest(tenant: "acme", tags: ["t"]), documents: ["registry": "two", "erasures": "{}"])
        #expect(event.seq == 2)
        #expect(
            try await store.documents(["registry", "erasures", "absent"]) == ["registry": "two", "erasures": "{}"])
        await store.close()
    }

    @Test(arguments: Kind.allCases)
    func stateSurvivesAReopenAndTheWindowKeepsTheNewestEvents(_ kind: Kind) async throws {
        let fixture = try await Self.fixture(kind, retention: 10)
        let store = try await fixture.open()
        for index in 1...25 { _ = try await Self.write(store, PurgeRequest(tenant: "acme", keys: ["/\(index)"])) }
        _ = try await store.write(reading: [], publishedAt: "") { _ throws(EdgeError) in
            (StoreWrite(documents: [StoreDocument.registry: "kept"]), ())
        }
        await store.close()
        let reopened = try await fixture.open()
        #expect(try await reopened.head() == 25)
        #expect(try await reopened.events(after: 0, limit: 100).map(\.seq) == Array(16...25), "the last ten")
        #expect(try await reopened.documents([StoreDocument.registry]) == [StoreDocument.registry: "kept"])
        // The log over the store: a cursor below the window is told so (`410` on the feed).
        let log = try await InvalidationLog.open(store: reopened, retention: 10, clock: ManualCacheClock())
        #expect(log.head == 25)
        guard case .expired = log.read(after: 3, limit: 100) else {
            Issue.record("a cursor before the window must be expired")
            return
        }
        #expect(try await log.append(PurgeRequest(tenant: "acme", all: true)).seq == 26)
        guard case .events(let events, _) = log.read(after: 25, limit: 100) else {
            Issue.record("the appended event must be readable")
            return
        }
        #expect(events.map(\.seq) == [26])
        // A long poll whose event landed between its read and its wait is answered at once. (Its
        // promise was dropped unfulfilled: a debug build stops the process for a leaked promise, and
        // an origin died so in `cli-checks.sh`.)
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let started = ContinuousClock.now
        try await log.wait(after: 25, seconds: 30, on: loops.next()).get()
        #expect(ContinuousClock.now - started < .seconds(5), "answered at once, not after its 30 s wait")
        try await loops.shutdownGracefully()
        // A larger retention than the store kept: the window starts where the store's events do.
        let wider = try await InvalidationLog.open(store: reopened, retention: 100, clock: ManualCacheClock())
        guard case .events(let kept, let head) = wider.read(after: 16, limit: 100) else {
            Issue.record("the events the store holds must be readable")
            return
        }
        #expect(kept.map(\.seq) == Array(17...26) && head == 26)
        guard case .expired = wider.read(after: 10, limit: 100) else {
            Issue.record("a cursor before what the store holds must be expired")
            return
        }
        await reopened.close()
    }

    @Test(arguments: Kind.allCases)
    func aSchemaNewerThanTheOriginIsRefused(_ kind: Kind) async throws {
        let fixture = try await Self.fixture(kind)
        let store = try await fixture.open()
        await store.close()
        switch kind {
        case .sqlite:
            let connection = try await SQLiteNIO.SQLiteConnection.open(
                storage: .file(path: fixture.directory + "/origin.sqlite"))
            _ = try await connection.query("UPDATE te_schema SET version = 99", [])
            try await connection.close()
        case .postgres:
            let postgres = store as? PostgresOriginStore
            let endpoint = try #require(postgres?.endpoint)
            let client = PostgresClient(
                configuration: .init(
                    host: endpoint.host, port: endpoint.port, username: endpoint.user, password: endpoint.password,
                    database: endpoint.database, tls: .disable),
                backgroundLogger: Self.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                try await client.query("UPDATE te_schema SET version = 99", logger: Self.logger)
                group.cancelAll()
            }
        }
        let refused = await #expect(throws: EdgeError.self) { try await fixture.open() }
        #expect(refused?.message.contains("schema version 99 is newer") == true)
    }

    @Test func stateFilesOfAnEarlierOriginAreImportedOnceAndATornLineIsNotAnEvent() async throws {
        let fixture = try await Self.fixture(.sqlite)
        let directory = fixture.directory
        func line(_ event: InvalidationEvent) throws -> String { try event.json.canonicalText }
        let first = try line(InvalidationEvent(seq: 1, purge: PurgeRequest(tenant: "acme", all: true), publishedAt: ""))
        let second = try line(
            InvalidationEvent(seq: 2, purge: PurgeRequest(tenant: "acme", keys: ["/a"]), publishedAt: ""))
        try Data((first + "\n" + second + "\n" + #"{"seq":3,"ten"#).utf8)
            .write(to: URL(fileURLWithPath: directory + "/invalidations.jsonl"))
        try Data(#"{"newco":{"requested_at":"2026-01-01T00:00:00Z","requested_by":"admin","confirmed":{}}}"#.utf8)
            .write(to: URL(fileURLWithPath: directory + "/erasures.json"))
        let store = try await fixture.open()
        try await FileStateImport.importIfPresent(from: directory, into: store, regions: [], logger: Self.logger)
        #expect(try await store.head() == 2, "the unacknowledged half line is not an event")
        #expect(!FileManager.default.fileExists(atPath: directory + "/invalidations.jsonl"), "removed once imported")
        #expect(!FileManager.default.fileExists(atPath: directory + "/erasures.json"))
        let ledger = try await ErasureLedger.open(store: store, clock: ManualCacheClock())
        #expect(ledger.all().map(\.tenant) == ["newco"])
        #expect(try await ledger.confirmed(tenant: "newco", node: "node-a"))
        #expect(try await !ledger.confirmed(tenant: "other", node: "node-a"), "no erasure was asked for")
        // A later start finds nothing to import; the ledger read back from the store is the same.
        try await FileStateImport.importIfPresent(from: directory, into: store, regions: [], logger: Self.logger)
        #expect(try await store.head() == 2)
        let again = try await ErasureLedger.open(store: store, clock: ManualCacheClock())
        #expect(again.all() == ledger.all())
        await store.close()
    }

    @Test func aCorruptStateFileStopsTheImportNamingIt() async throws {
        let fixture = try await Self.fixture(.sqlite)
        let good = try InvalidationEvent(seq: 1, purge: PurgeRequest(tenant: "acme", all: true), publishedAt: "")
            .json.canonicalText
        try Data((good + "\n{\"seq\":true}\n").utf8)
            .write(to: URL(fileURLWithPath: fixture.directory + "/invalidations.jsonl"))
        let store = try await fixture.open()
        let refused = await #expect(throws: EdgeError.self) {
            try await FileStateImport.importIfPresent(
                from: fixture.directory, into: store, regions: [], logger: Self.logger)
        }
        #expect(refused?.message.contains("invalidations.jsonl:2") == true)
        #expect(try await store.head() == 0, "nothing imported")
        await store.close()
    }

    @Test(arguments: Kind.allCases)
    func anUnreadableLedgerIsRefusedNotReplaced(_ kind: Kind) async throws {
        let fixture = try await Self.fixture(kind)
        let store = try await fixture.open()
        _ = try await store.write(reading: [], publishedAt: "") { _ throws(EdgeError) in
            (StoreWrite(documents: [StoreDocument.erasures: #"{"newco":{"requested_at":1}}"#]), ())
        }
        let refused = await #expect(throws: EdgeError.self) {
            try await ErasureLedger.open(store: store, clock: ManualCacheClock())
        }
        #expect(refused?.message.contains("erasure ledger") == true)
        await store.close()
    }

    @Test func aPostgresURLIsReadStrictlyAndItsPasswordNeverPrinted() throws {
        let url = try #require(PostgresEndpoint(parsing: "postgres://edge:s3cret@db.internal:6543/edge_origin"))
        #expect(url.host == "db.internal" && url.port == 6543 && url.user == "edge" && url.database == "edge_origin")
        #expect(url.description == "postgres://edge:***@db.internal:6543/edge_origin")
        #expect(PostgresEndpoint(parsing: "postgresql://edge@[::1]/db")?.host == "::1")
        for bad in [
            "", "mysql://edge@h/db", "postgres://h/db", "postgres://@h/db", "postgres://edge@h", "postgres://edge@h/",
            "postgres://edge@h:0/db", "postgres://edge@h:65536/db", "postgres://edge@h:-1/db",
            "postgres://edge@h/db?sslmode=disable", "postgres://edge@h/d b", "postgres://ed ge@h/db",
            "postgres://edge@h/" + String(repeating: "d", count: 64),
            "postgres://edge@" + String(repeating: "h", count: 4000) + "/db",
        ] {
            #expect(PostgresEndpoint(parsing: bad) == nil, "\(bad.prefix(60))")
        }
    }
}
