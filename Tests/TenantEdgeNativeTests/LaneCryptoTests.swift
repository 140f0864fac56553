import Dispatch
import TenantEdgeCore
import Testing

@testable import TenantEdgeNative

/// The hit path's crypto on a worker lane (one AES-GCM context per key version and the HMAC states,
/// shared by every thread and only read) must give exactly what any other thread gets, every time,
/// and the digest of a domain-prefixed target must be the one the concatenated string always had
/// (entries already in Redis keep their names).
@Suite struct LaneCryptoTests {
    /// Runs `body` on a thread that holds a worker lane.
    private func onLane<Result: Sendable>(_ body: @Sendable () throws -> Result) rethrows -> Result {
        try DispatchQueue(label: "lane").sync {
            #expect(WorkerLane.claim() != nil)
            return try body()
        }
    }

    @Test func laneHMACMatchesRFC4231EveryTime() throws {
        let hmac = try HMACSHA256(key: Array("Jefe".utf8))
        let digests = onLane { (0..<3).map { _ in hmac.mac("what do ya want for nothing?") } }
        for digest in digests {
            #expect(Hex.encode(digest.bytes) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        }
    }

    @Test func domainDigestIsTheConcatenatedStringsDigest() throws {
        let cipher = try AESGCMTenantCipher(keys: [1: OpenSSL.randomBytes(32)])
        let target = "/v1/items/42?sort=name&page=3"
        let concatenated = cipher.digest("k\u{0}" + target)
        #expect(cipher.digest(domain: UInt8(ascii: "k"), target) == concatenated)
        #expect(onLane { cipher.digest(domain: UInt8(ascii: "k"), target) } == concatenated)
        #expect(cipher.digest(domain: UInt8(ascii: "t"), target) != concatenated, "domains stay separated")
        let plain = try PlaintextTenantCipher(digestKey: OpenSSL.randomBytes(32))
        #expect(plain.digest(domain: UInt8(ascii: "p"), "/v1") == plain.digest("p\u{0}/v1"))
    }

    @Test func sealedOnOneLaneOpensOnAnotherAndOffLane() throws {
        let cipher = try AESGCMTenantCipher(keys: [1: OpenSSL.randomBytes(32), 2: OpenSSL.randomBytes(32)])
        let aad = Array("te:acme:http:binding".utf8)
        let sealed = try onLane { try cipher.seal(Array("secret body".utf8), aad: aad) }
        #expect(try cipher.open(sealed, aad: aad) == Array("secret body".utf8))
        for _ in 0..<3 {  // the context is reused: every open brings its own nonce and tag
            #expect(try onLane { try cipher.open(sealed, aad: aad) } == Array("secret body".utf8))
        }
        var changed = aad
        changed[changed.count - 1] ^= 1
        let moved = changed
        #expect(throws: EdgeError.self) { try onLane { try cipher.open(sealed, aad: moved) } }
        // The failed open left the context usable.
        #expect(try onLane { try cipher.open(sealed, aad: aad) } == Array("secret body".utf8))
    }
}
