import Testing

@testable import TenantEdgeCore

@Suite("Invalidation window")
struct InvalidationWindowTests {
    static func event(_ seq: Int) -> InvalidationEvent {
        InvalidationEvent(seq: seq, purge: PurgeRequest(tenant: "acme", keys: ["/\(seq)"]), publishedAt: "t")
    }

    @Test func readsFollowTheCursorAndExpireBelowTheWindowOrAboveTheHead() {
        var window = InvalidationWindow(retention: 3)
        #expect(window.read(after: 0, limit: 10) == .events([], head: 0))
        for seq in 1...5 { window.append(Self.event(seq)) }
        #expect(window.oldest == 3)
        #expect(window.read(after: 2, limit: 10) == .events([3, 4, 5].map(Self.event), head: 5))
        #expect(window.read(after: 3, limit: 1) == .events([Self.event(4)], head: 5))
        #expect(window.read(after: 5, limit: 10) == .events([], head: 5))
        #expect(window.read(after: 1, limit: 10) == .expired(head: 5), "event 2 was already dropped")
        #expect(window.read(after: 6, limit: 10) == .expired(head: 5), "a cursor above the head cannot be vouched for")
        for seq in 6...20 { window.append(Self.event(seq)) }
        #expect(window.read(after: 17, limit: 10) == .events([18, 19, 20].map(Self.event), head: 20))
    }

    @Test func eventsRoundTripThroughTheirJSONAndBadOnesAreRefused() throws {
        let event = InvalidationEvent(
            seq: 9, purge: PurgeRequest(tenant: "acme", tags: ["t"], all: false), publishedAt: "2026-11-27T00:00:00Z")
        #expect(try InvalidationEvent(json: event.json) == event)
        let text = try event.json.canonicalText
        #expect(
            try InvalidationEvent(json: try #require(JSONValue.parse(Array(text.utf8)))) == event,
            "through its text too")
        for bad in [
            #"{"seq":0,"tenant":"acme","all":true}"#, #"{"seq":3,"tenant":"acme"}"#,
            #"{"seq":3,"tenant":"acme","all":true,"extra":1}"#, #"{"seq":3.5,"tenant":"acme","all":true}"#,
            #"{"seq":3,"tenant":"acme","all":1}"#, #"{"seq":"3","tenant":"acme","all":true}"#,
            #"{"seq":3,"tenant":"acme","keys":["a",1]}"#, #"[{"seq":3}]"#,
        ] {
            #expect(throws: EdgeError.self, "\(bad)") {
                try InvalidationEvent(json: try #require(JSONValue.parse(Array(bad.utf8))))
            }
        }
    }
}
