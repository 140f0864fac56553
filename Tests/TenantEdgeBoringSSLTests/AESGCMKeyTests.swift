import TenantEdgeBoringSSL
import TenantEdgeCore
import TenantEdgeNative
import Testing

/// AES-256-GCM through BoringSSL (`AESGCMKey`) must be the AES-256-GCM OpenSSL wrote before it:
/// entries already in Redis, sealed by nodes of an earlier release, open on a new one, and the
/// other way round while a fleet is half upgraded. Checked against the GCM specification's vector
/// and, byte for byte at lengths around every block and chunk size BoringSSL's code paths switch
/// at, against OpenSSL's (through `KeyWrap`, the node's one-shot OpenSSL AES-256-GCM, which lays
/// out `nonce | ciphertext | tag`). A test target of its own, as the library has one.
@Suite("AES-256-GCM: BoringSSL against the specification and OpenSSL")
struct AESGCMKeyTests {
    /// The GCM specification's test case 16 (AES-256, 96-bit IV, 60-byte plaintext, 20-byte AAD).
    @Test func matchesTheGCMSpecificationsTestCase16() throws {
        let key = try AESGCMKey(Self.bytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"))
        let nonce = Self.bytes("cafebabefacedbaddecaf888")
        let plaintext = Self.bytes(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let aad = Self.bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let expected =
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
            + "76fc6ece0f4e1768cddf8853bb2d551b"
        var sealed = [UInt8](repeating: 0, count: plaintext.count + 16)
        try Self.seal(key, nonce: nonce, plaintext: plaintext, aad: aad, into: &sealed)
        #expect(Hex.encode(sealed) == expected)
        #expect(Self.open(key, nonce: nonce, sealed: sealed, aad: aad) == plaintext)
    }

    @Test func opensWhatOpenSSLSealedAndOpenSSLOpensWhatItSealed() throws {
        let keyBytes = try OpenSSL.randomBytes(32)
        let key = try AESGCMKey(keyBytes)
        // KeyWrap opens nothing shorter than one byte of body.
        var lengths = Array(1...600)
        // BoringSSL hashes in 3 KiB chunks and its AVX-512 code takes 512-byte strides.
        lengths += [1023, 1024, 1025, 3071, 3072, 3073, 4095, 4096, 4097, 16383, 16384, 16385, 65536 + 17]
        for length in lengths {
            let plaintext = try OpenSSL.randomBytes(length)
            let aad = try OpenSSL.randomBytes(length % 97)
            let byOpenSSL = try KeyWrap.seal(plaintext, kek: keyBytes, aad: aad)
            let nonce = Array(byOpenSSL.prefix(12))
            #expect(Self.open(key, nonce: nonce, sealed: Array(byOpenSSL.dropFirst(12)), aad: aad) == plaintext)
            var byBoring = [UInt8](repeating: 0, count: length + 16)
            try Self.seal(key, nonce: nonce, plaintext: plaintext, aad: aad, into: &byBoring)
            #expect(nonce + byBoring == byOpenSSL, "length \(length)")
            #expect(KeyWrap.open(nonce + byBoring, kek: keyBytes, aad: aad) == plaintext, "length \(length)")
        }
        // An empty body is a tag alone, the same from both.
        let emptyByOpenSSL = try KeyWrap.seal([], kek: keyBytes, aad: [5])
        #expect(emptyByOpenSSL.count == 28)
        var empty = [UInt8](repeating: 0, count: 16)
        try Self.seal(key, nonce: Array(emptyByOpenSSL.prefix(12)), plaintext: [], aad: [5], into: &empty)
        #expect(Array(emptyByOpenSSL.dropFirst(12)) == empty)
        #expect(
            Self.open(key, nonce: Array(emptyByOpenSSL.prefix(12)), sealed: empty, aad: [6]) == nil, "binds the AAD")
    }

    @Test func refusesAChangedTagNonceOrAADAndBadSizes() throws {
        let key = try AESGCMKey(OpenSSL.randomBytes(32))
        let nonce = try OpenSSL.randomBytes(12)
        var sealed = [UInt8](repeating: 0, count: 40)
        try Self.seal(key, nonce: nonce, plaintext: [UInt8](repeating: 7, count: 24), aad: [1], into: &sealed)
        var wrongSize = [UInt8](repeating: 0, count: 39)
        #expect(throws: EdgeError.self) {
            try Self.seal(key, nonce: nonce, plaintext: [UInt8](repeating: 7, count: 24), aad: [1], into: &wrongSize)
        }
        for index in sealed.indices {
            var changed = sealed
            changed[index] ^= 0x80
            #expect(Self.open(key, nonce: nonce, sealed: changed, aad: [1]) == nil, "byte \(index)")
        }
        // GCM decrypts before it checks the tag; a refused open leaves none of that behind.
        var output = [UInt8](repeating: 0xAA, count: 24)
        var flipped = sealed
        flipped[3] ^= 1
        let refused = nonce.withUnsafeBytes { nonce in
            flipped.withUnsafeBytes { flipped in
                [UInt8]([1]).withUnsafeBytes { aad in
                    output.withUnsafeMutableBytes { key.open(nonce: nonce, sealed: flipped, aad: aad, into: $0) }
                }
            }
        }
        #expect(refused == nil)
        #expect(output.allSatisfy { $0 == 0 }, "no unauthenticated plaintext stays in the output")
        var otherNonce = nonce
        otherNonce[11] ^= 1
        #expect(Self.open(key, nonce: otherNonce, sealed: sealed, aad: [1]) == nil)
        #expect(Self.open(key, nonce: nonce, sealed: sealed, aad: [2]) == nil)
        #expect(Self.open(key, nonce: nonce, sealed: sealed, aad: []) == nil)
        #expect(Self.open(key, nonce: Array(nonce.prefix(8)), sealed: sealed, aad: [1]) == nil, "short nonce")
        #expect(Self.open(key, nonce: nonce, sealed: Array(sealed.prefix(15)), aad: [1]) == nil, "shorter than a tag")
        #expect(Self.open(key, nonce: nonce, sealed: sealed, aad: [1]) == [UInt8](repeating: 7, count: 24))
        #expect(throws: EdgeError.self) { try AESGCMKey([UInt8](repeating: 1, count: 16)) }
        #expect(throws: EdgeError.self) { try AESGCMKey([]) }
    }

    /// The whole sealed layout (`version | nonce | ciphertext | tag`, the version bound after the
    /// caller's AAD), built here with OpenSSL as the cipher built it before, opens with the cipher;
    /// and what the cipher seals opens with OpenSSL.
    @Test func aTenantCiphersSealedLayoutIsWhatOpenSSLMadeOfIt() throws {
        let tenantKey = try OpenSSL.randomBytes(32)
        let cipher = try AESGCMTenantCipher(keys: [7: tenantKey])
        let aeadKey = try OpenSSL.hkdf(key: tenantKey, salt: [], info: Array("te-aead-v1".utf8))
        let aad = Array("te:acme:http:binding".utf8)
        let boundAAD = aad + [0, 0, 0, 7]
        let plaintext = try OpenSSL.randomBytes(1500)
        let byOpenSSL = try KeyWrap.seal(plaintext, kek: aeadKey, aad: boundAAD)  // nonce | ciphertext | tag
        #expect(try cipher.open([0, 0, 0, 7] + byOpenSSL, aad: aad) == plaintext)
        #expect(throws: EdgeError.self) { try cipher.open([0, 0, 0, 7] + byOpenSSL, aad: boundAAD) }

        let sealed = try cipher.seal(plaintext, aad: aad)
        #expect(Array(sealed.prefix(4)) == [0, 0, 0, 7])
        #expect(KeyWrap.open(Array(sealed.dropFirst(4)), kek: aeadKey, aad: boundAAD) == plaintext)
        #expect(KeyWrap.open(Array(sealed.dropFirst(4)), kek: aeadKey, aad: aad) == nil)
    }

    /// A value read back from Redis can be any length: everything too short to hold a version, a
    /// nonce, one byte and a tag is refused as malformed, never read past its end.
    @Test func aTenantCipherRefusesEveryTooShortValue() throws {
        let cipher = try AESGCMTenantCipher(keys: [1: OpenSSL.randomBytes(32)])
        let sealed = try cipher.seal([42], aad: [1])
        #expect(sealed.count == 33)
        #expect(try cipher.open(sealed, aad: [1]) == [42])
        for length in 0..<33 {
            let short = Array(sealed.prefix(length))
            #expect(throws: EdgeError.self, "length \(length)") { try cipher.open(short, aad: [1]) }
        }
    }

    /// The associated data grows by 32 bytes a tag; a long one is joined with the version as a
    /// short one is (the standard library keeps 1,024 bytes on the stack for sure, more only when
    /// the stack has room, and takes the heap otherwise).
    @Test func longAssociatedDataSealsAndOpens() throws {
        let cipher = try AESGCMTenantCipher(keys: [3: OpenSSL.randomBytes(32)])
        for count in [0, 1, 1020, 1021, 2200, 70_000] {
            let aad = try OpenSSL.randomBytes(count)
            let sealed = try cipher.seal(Array("tagged body".utf8), aad: aad)
            #expect(try cipher.open(sealed, aad: aad) == Array("tagged body".utf8), "aad \(count)")
            var changed = aad + [0]
            changed.removeLast()
            if count > 0 { changed[count - 1] ^= 1 } else { changed = [0] }
            let moved = changed
            #expect(throws: EdgeError.self, "aad \(count)") { try cipher.open(sealed, aad: moved) }
        }
    }

    // MARK: helpers

    static func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex) ?? [] }

    static func seal(_ key: AESGCMKey, nonce: [UInt8], plaintext: [UInt8], aad: [UInt8], into out: inout [UInt8])
        throws(EdgeError)
    {
        let sealed = nonce.withUnsafeBytes { nonce in
            plaintext.withUnsafeBytes { plaintext in
                aad.withUnsafeBytes { aad in
                    out.withUnsafeMutableBytes { output in
                        Result { () throws(EdgeError) in
                            try key.seal(nonce: nonce, plaintext: plaintext, aad: aad, into: output)
                        }
                    }
                }
            }
        }
        try sealed.get()
    }

    static func open(_ key: AESGCMKey, nonce: [UInt8], sealed: [UInt8], aad: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: max(sealed.count - 16, 1))
        let count = nonce.withUnsafeBytes { nonce in
            sealed.withUnsafeBytes { sealed in
                aad.withUnsafeBytes { aad in
                    out.withUnsafeMutableBytes { key.open(nonce: nonce, sealed: sealed, aad: aad, into: $0) }
                }
            }
        }
        return count.map { Array(out.prefix($0)) }
    }
}
