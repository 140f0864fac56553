import TenantEdgeCore
import Testing

@testable import TenantEdgeNative

@Suite("OpenSSL: digests, HKDF, HMAC; the tenant cipher")
struct OpenSSLCryptoTests {
    static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    @Test func sha256MatchesTheStandardVector() {
        #expect(
            Self.hex(OpenSSL.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func sha1NamesRedisScriptsAsRedisDoes() {
        #expect(OpenSSL.sha1Hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }

    @Test func hkdfMatchesRFC5869TestCase1() throws {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt: [UInt8] = Array(0x00...0x0c)
        let info: [UInt8] = Array(0xf0...0xf9)
        let okm = try OpenSSL.hkdf(key: ikm, salt: salt, info: info, count: 42)
        #expect(Self.hex(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test func hmacMatchesRFC4231TestCase2() throws {
        let mac = try HMACSHA256(key: Array("Jefe".utf8)).mac("what do ya want for nothing?")
        #expect(Self.hex(mac.bytes) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    static func cipher(_ seed: UInt8, version: UInt32 = 1) throws -> AESGCMTenantCipher {
        try AESGCMTenantCipher(keys: [version: [UInt8](repeating: seed, count: 32)])
    }

    @Test func sealOpensUnderTheSameKeyAndAAD() throws {
        let cipher = try Self.cipher(1)
        let plaintext = Array("a cached body".utf8)
        let sealed = try cipher.seal(plaintext, aad: [1, 2, 3])
        #expect(sealed.count == plaintext.count + 32)
        #expect(!sealed.contains(subsequence: plaintext))
        #expect(try cipher.open(sealed, aad: [1, 2, 3]) == plaintext)
        #expect(try cipher.seal(plaintext, aad: [1, 2, 3]) != sealed, "nonces must differ between seals")
    }

    @Test func everyTamperedByteFailsToOpen() throws {
        let cipher = try Self.cipher(1)
        let sealed = try cipher.seal(Array("body".utf8), aad: [9])
        for index in sealed.indices {
            var changed = sealed
            changed[index] ^= 0x01
            #expect(throws: EdgeError.self) { try cipher.open(changed, aad: [9]) }
        }
    }

    @Test func otherAADOrOtherTenantKeyFailsToOpen() throws {
        let sealed = try Self.cipher(1).seal(Array("body".utf8), aad: Array("te:acme:http:x".utf8))
        #expect(throws: EdgeError.self) { try Self.cipher(1).open(sealed, aad: Array("te:globex:http:x".utf8)) }
        #expect(throws: EdgeError.self) { try Self.cipher(2).open(sealed, aad: Array("te:acme:http:x".utf8)) }
        #expect(throws: EdgeError.self) {
            try Self.cipher(1, version: 2).open(sealed, aad: Array("te:acme:http:x".utf8))
        }
    }

    @Test func olderListedVersionsStillOpen() throws {
        let old = try Self.cipher(5, version: 1).seal([1, 2, 3], aad: [])
        let both = try AESGCMTenantCipher(keys: [
            1: [UInt8](repeating: 5, count: 32), 2: [UInt8](repeating: 6, count: 32),
        ])
        #expect(both.keyVersion == 2)
        #expect(try both.open(old, aad: []) == [1, 2, 3])
    }

    @Test func concurrentSealAndOpenShareOneContextSafely() async throws {
        let cipher = try Self.cipher(3)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for n in 0..<500 {
                        let plaintext = Array("\(task)-\(n)".utf8)
                        let sealed = try cipher.seal(plaintext, aad: [UInt8(task)])
                        #expect(try cipher.open(sealed, aad: [UInt8(task)]) == plaintext)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func standaloneKeyringDerivesDistinctStableTenantKeys() throws {
        let tenants = [
            TenantConfig(id: "acme", hosts: ["a"], upstream: "http://a"),
            TenantConfig(id: "globex", hosts: ["g"], upstream: "http://g"),
        ]
        let master = [UInt8](repeating: 42, count: 32)
        let one = try StandaloneKeyring(masterKey: master, tenants: tenants, encryption: true)
        let two = try StandaloneKeyring(masterKey: master, tenants: tenants, encryption: true)
        let acme = try #require(one.cipher(forTenant: "acme"))
        #expect(acme.digest("/x") == two.cipher(forTenant: "acme")?.digest("/x"))
        #expect(acme.digest("/x") != one.cipher(forTenant: "globex")?.digest("/x"))
        let sealed = try acme.seal([1], aad: [])
        #expect(try two.cipher(forTenant: "acme")!.open(sealed, aad: []) == [1])
        #expect(throws: EdgeError.self) { try one.cipher(forTenant: "globex")!.open(sealed, aad: []) }
    }
}

extension Array where Element: Equatable {
    func contains(subsequence: [Element]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<$0 + subsequence.count]) == subsequence }
    }
}
