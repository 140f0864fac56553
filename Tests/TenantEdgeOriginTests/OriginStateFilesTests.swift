import Foundation
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeOrigin

/// The origin's state files through their `Codable` forms: what a crash leaves behind is read
/// back, and what cannot be read stops the origin with the file named rather than starting empty.
@Suite("Origin state files")
struct OriginStateFilesTests {
    @Test func aTornLastLogLineIsCutOffAndTheLogContinuesAfterIt() throws {
        let directory = try temporaryDirectory("te-log-torn")
        let path = directory + "/invalidations.jsonl"
        let first = try InvalidationLog.line(
            InvalidationEvent(seq: 1, purge: PurgeRequest(tenant: "acme", all: true), publishedAt: ""))
        let second = try InvalidationLog.line(
            InvalidationEvent(seq: 2, purge: PurgeRequest(tenant: "acme", keys: ["/a"]), publishedAt: ""))
        try Data((first + "\n" + second + "\n" + #"{"seq":3,"ten"#).utf8).write(to: URL(fileURLWithPath: path))
        let log = try InvalidationLog(stateDirectory: directory, retention: 100, clock: ManualCacheClock())
        #expect(log.head == 2, "the unacknowledged half line is not an event")
        #expect(try log.append(PurgeRequest(tenant: "acme", tags: ["t"])).seq == 3)
        let reopened = try InvalidationLog(stateDirectory: directory, retention: 100, clock: ManualCacheClock())
        #expect(reopened.head == 3)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let seqs = text.split(separator: "\n").map { line in
            JSONValue.parse(Array(line.utf8)).flatMap { try? InvalidationEvent(json: $0) }?.seq
        }
        #expect(seqs == [1, 2, 3], "every line is a whole event")
    }

    @Test func aCorruptLineInsideTheLogStopsTheOriginNamingTheLine() throws {
        let directory = try temporaryDirectory("te-log-corrupt")
        let good = try InvalidationLog.line(
            InvalidationEvent(seq: 1, purge: PurgeRequest(tenant: "acme", all: true), publishedAt: ""))
        try Data((good + "\n{\"seq\":true}\n").utf8).write(to: URL(fileURLWithPath: directory + "/invalidations.jsonl"))
        #expect(throws: EdgeError.self) {
            try InvalidationLog(stateDirectory: directory, retention: 100, clock: ManualCacheClock())
        }
    }

    @Test func theErasureLedgerRoundTripsAndAnUnreadableOneIsRefused() throws {
        let directory = try temporaryDirectory("te-ledger")
        let clock = ManualCacheClock()
        let ledger = try ErasureLedger(stateDirectory: directory, clock: clock)
        try ledger.requested(tenant: "newco", by: "admin:ab12")
        #expect(try ledger.confirmed(tenant: "newco", node: "node-a"))
        #expect(try !ledger.confirmed(tenant: "other", node: "node-a"), "no erasure was asked for")
        let again = try ErasureLedger(stateDirectory: directory, clock: clock)
        #expect(again.all() == ledger.all())
        #expect(again.all().first?.tenant == "newco" && again.all().first?.confirmed.keys.sorted() == ["node-a"])
        try Data(#"{"newco":{"requested_at":1}}"#.utf8).write(to: URL(fileURLWithPath: directory + "/erasures.json"))
        let error = #expect(throws: EdgeError.self) { try ErasureLedger(stateDirectory: directory, clock: clock) }
        #expect(error?.message.contains("erasures.json") == true)
    }
}

/// The typed JSON value: strict types, exact integers, canonical text.
@Suite("JSON values")
struct JSONValueTests {
    @Test func typesAreNeverGuessed() throws {
        let value = try #require(JSONValue.parse(Array(#"{"a":1,"b":true,"c":1.5,"d":"x","e":[1,"y"],"f":null}"#.utf8)))
        let object = try #require(value.objectValue)
        #expect(object["a"] == .integer(1) && object["a"]?.boolValue == nil)
        #expect(object["b"] == .bool(true) && object["b"]?.integerValue == nil)
        #expect(object["c"] == .number(1.5) && object["c"]?.integerValue == nil)
        #expect(object["e"]?.stringsValue == nil, "a mixed array is not a list of strings")
        #expect(object["f"] == .null)
        #expect(JSONValue.parse(Array("{".utf8)) == nil && JSONValue.parse([]) == nil)
        #expect(JSONValue.parse(Array("9007199254740993".utf8)) == .integer(9_007_199_254_740_993), "exact beyond 2^53")
    }

    @Test func canonicalTextSortsKeysAndKeepsSlashes() throws {
        let value = JSONValue.object(["b": .string("/x"), "a": .array([.integer(2), .bool(false)])])
        #expect(try value.canonicalText == #"{"a":[2,false],"b":"/x"}"#)
    }
}
