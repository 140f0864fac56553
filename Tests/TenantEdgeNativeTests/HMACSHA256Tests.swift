import COpenSSL
import TenantEdgeCore
import Testing

@testable import TenantEdgeNative

/// `HMACSHA256` builds HMAC (RFC 2104) from OpenSSL's SHA-256 states: it must give exactly what
/// OpenSSL's own HMAC gives, for every key length (shorter than, equal to and longer than the
/// 64-byte block, which is hashed first) and every message, however it is split into prefix and data.
@Suite struct HMACSHA256Tests {
    /// OpenSSL's HMAC through `EVP_Q_mac`, the reference.
    static func reference(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let made = EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, key, key.count, message, message.count, &out, 32, &length)
        #expect(made != nil && length == 32)
        return out
    }

    static func mac(_ hmac: HMACSHA256, prefix: [UInt8], _ data: [UInt8]) -> [UInt8] {
        prefix.withUnsafeBytes { prefix in data.withUnsafeBytes { hmac.mac(prefix: prefix, $0).bytes } }
    }

    /// RFC 4231 test cases 1, 2, 6 and 7 (20-, 4- and 131-byte keys; 7 has a 152-byte message).
    @Test(arguments: [
        (
            [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        ),
        (
            Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ),
        (
            [UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        ),
        (
            [UInt8](repeating: 0xaa, count: 131),
            Array(
                ("This is a test using a larger than block-size key and a larger than block-size data. The key needs"
                    + " to be hashed before being used by the HMAC algorithm.").utf8),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        ),
    ])
    func matchesRFC4231(key: [UInt8], message: [UInt8], expected: String) throws {
        let hmac = try HMACSHA256(key: key)
        #expect(Hex.encode(Self.mac(hmac, prefix: [], message)) == expected)
        #expect(Self.reference(key: key, message) == Self.mac(hmac, prefix: [], message))
    }

    /// Keys at the block's edges (0, 1, 63, 64, 65 bytes; over 64 they are hashed first) and empty
    /// or block-sized messages, each against OpenSSL's HMAC.
    @Test(arguments: [0, 1, 32, 63, 64, 65, 128])
    func matchesOpenSSLAtTheBlocksEdges(keyCount: Int) throws {
        let key = (0..<keyCount).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let hmac = try HMACSHA256(key: key)
        for message in [[], [0x61], [UInt8](repeating: 0x62, count: 55), [UInt8](repeating: 0x63, count: 64)] {
            #expect(Self.mac(hmac, prefix: [], message) == Self.reference(key: key, message), "\(message.count)")
        }
    }

    /// Seeded keys of 0 to 200 bytes and messages of 0 to 300 bytes, split at every kind of point
    /// (nothing in the prefix, all of it, across the 64-byte block boundary), against OpenSSL's HMAC.
    @Test func matchesOpenSSLsHMACForAnyKeyMessageAndSplit() throws {
        var generator = SeededGenerator(seed: 0x4D41_4353)
        for round in 0..<400 {
            let key = (0..<Int.random(in: 0...200, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let message = (0..<Int.random(in: 0...300, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let split = Int.random(in: 0...message.count, using: &generator)
            let hmac = try HMACSHA256(key: key)
            let ours = Self.mac(hmac, prefix: Array(message[..<split]), Array(message[split...]))
            #expect(
                ours == Self.reference(key: key, message), "round \(round): key \(key.count), message \(message.count)")
            #expect(Self.mac(hmac, prefix: [], message) == ours, "the same digest again: nothing is left over")
        }
    }

    /// Two digesters under different keys, used from several threads at once, never mix states.
    @Test func concurrentDigestsUnderTwoKeysStayApart() async throws {
        let a = try HMACSHA256(key: Array("key a".utf8))
        let b = try HMACSHA256(key: Array("key b".utf8))
        let message = Array("/v1/items/42".utf8)
        let expectedA = Self.reference(key: Array("key a".utf8), message)
        let expectedB = Self.reference(key: Array("key b".utf8), message)
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for task in 0..<4 {
                group.addTask {
                    var wrong = 0
                    for _ in 0..<2_000 {
                        let hmac = task % 2 == 0 ? a : b
                        let expected = task % 2 == 0 ? expectedA : expectedB
                        if Self.mac(hmac, prefix: [], message) != expected { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }
}
