import Testing

@testable import TenantEdgeCore

@Suite("Purge notices between sibling nodes")
struct PurgeNoticeTests {
    @Test func noticesRoundTripAndMalformedOnesAreRefusedWhole() throws {
        let digests = [
            KeyDigest(bytes: (0..<32).map { UInt8($0) }), KeyDigest(bytes: [UInt8](repeating: 0xff, count: 32)),
        ]
        let notice = PurgeNotice(fence: 42, node: "eu-west-a", kind: .indexes, digests: digests)
        #expect(PurgeNotice(payload: notice.payload) == notice)
        #expect(PurgeNotice(payload: Array("7 n a".utf8)) == PurgeNotice(fence: 7, node: "n", kind: .all, digests: []))
        #expect(KeyDigest(base64URL: digests[1].base64URL) == digests[1])
        // Known answers (Python's base64.urlsafe_b64encode without padding), in the byte order of `bytes`.
        #expect(digests[0].base64URL == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
        #expect(digests[1].base64URL == "__________________________________________8")
        for bad in ["", "x n k", "1 n z", "1 n k not-a-digest", "1 n k \(digests[0].base64URL)AA", "1"] {
            #expect(PurgeNotice(payload: Array(bad.utf8)) == nil, "refused: \(bad)")
        }
    }

    @Test func channelsAreScopedToTheTenantAndTheDatabase() {
        #expect(PurgeNotice.channel(tenant: "acme", database: 3) == "te:acme:purge:3")
        #expect(PurgeNotice.tenant(ofChannel: "te:acme:purge:3", database: 3) == "acme")
        #expect(PurgeNotice.tenant(ofChannel: "te:acme:purge:3", database: 0) == nil)
        #expect(PurgeNotice.tenant(ofChannel: "te::purge:0", database: 0) == nil)
    }
}
