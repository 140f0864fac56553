import COpenSSL
import TenantEdgeCore
import Testing

@testable import TenantEdgeNative

/// AES-256-GCM through BoringSSL (`AESGCMKey`) must be the AES-256-GCM OpenSSL wrote before it:
/// entries already in Redis, sealed by nodes of an earlier release, open on a new one, and the
/// other way round while a fleet is half upgraded. Checked against the GCM specification's vector
/// and, byte for byte at lengths around every block and chunk size BoringSSL's code paths switch
/// at, against OpenSSL's EVP interface.
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
        let ok = Self.seal(key, nonce: nonce, plaintext: plaintext, aad: aad, into: &sealed)
        #expect(ok)
        #expect(Hex.encode(sealed) == expected)
        #expect(Self.open(key, nonce: nonce, sealed: sealed, aad: aad) == plaintext)
    }

    @Test func opensWhatOpenSSLSealedAndOpenSSLOpensWhatItSealed() throws {
        let keyBytes = try OpenSSL.randomBytes(32)
        let key = try AESGCMKey(keyBytes)
        var lengths = Array(0...600)
        lengths += [1023, 1024, 1025, 4095, 4096, 4097, 16383, 16384, 16385, 65536 + 17]
        for length in lengths {
            let plaintext = try OpenSSL.randomBytes(length)
            let nonce = try OpenSSL.randomBytes(12)
            let aad = try OpenSSL.randomBytes(length % 97)
            let byOpenSSL = try #require(Self.openSSLSeal(key: keyBytes, nonce: nonce, plaintext: plaintext, aad: aad))
            var byBoring = [UInt8](repeating: 0, count: length + 16)
            let sealed = Self.seal(key, nonce: nonce, plaintext: plaintext, aad: aad, into: &byBoring)
            #expect(sealed)
            #expect(byBoring == byOpenSSL, "length \(length)")
            #expect(Self.open(key, nonce: nonce, sealed: byOpenSSL, aad: aad) == plaintext, "length \(length)")
            #expect(Self.openSSLOpen(key: keyBytes, nonce: nonce, sealed: byBoring, aad: aad) == plaintext)
        }
    }

    @Test func refusesAChangedTagNonceOrAADAndBadSizes() throws {
        let key = try AESGCMKey(OpenSSL.randomBytes(32))
        let nonce = try OpenSSL.randomBytes(12)
        var sealed = [UInt8](repeating: 0, count: 40)
        let ok = Self.seal(key, nonce: nonce, plaintext: [UInt8](repeating: 7, count: 24), aad: [1], into: &sealed)
        #expect(ok)
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
        let nonce = try OpenSSL.randomBytes(12)
        let body = try #require(Self.openSSLSeal(key: aeadKey, nonce: nonce, plaintext: plaintext, aad: boundAAD))
        #expect(try cipher.open([0, 0, 0, 7] + nonce + body, aad: aad) == plaintext)
        #expect(throws: EdgeError.self) { try cipher.open([0, 0, 0, 7] + nonce + body, aad: boundAAD) }

        let sealed = try cipher.seal(plaintext, aad: aad)
        #expect(Array(sealed.prefix(4)) == [0, 0, 0, 7])
        let opened = Self.openSSLOpen(
            key: aeadKey, nonce: Array(sealed[4..<16]), sealed: Array(sealed[16...]), aad: boundAAD)
        #expect(opened == plaintext)
        #expect(
            Self.openSSLOpen(key: aeadKey, nonce: Array(sealed[4..<16]), sealed: Array(sealed[16...]), aad: aad) == nil)
    }

    // MARK: helpers

    static func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex) ?? [] }

    static func seal(_ key: AESGCMKey, nonce: [UInt8], plaintext: [UInt8], aad: [UInt8], into out: inout [UInt8])
        -> Bool
    {
        nonce.withUnsafeBytes { nonce in
            plaintext.withUnsafeBytes { plaintext in
                aad.withUnsafeBytes { aad in
                    out.withUnsafeMutableBytes { key.seal(nonce: nonce, plaintext: plaintext, aad: aad, into: $0) }
                }
            }
        }
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

    /// OpenSSL's one-shot AES-256-GCM through EVP: the library every entry was sealed with before.
    static func openSSLSeal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: Int32 = 0
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1,
            aad.isEmpty || EVP_EncryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1
        else { return nil }
        let ok = out.withUnsafeMutableBufferPointer { output -> Bool in
            let base = output.baseAddress!
            guard
                plaintext.isEmpty || EVP_EncryptUpdate(context, base, &length, plaintext, Int32(plaintext.count)) == 1,
                EVP_EncryptFinal_ex(context, base + plaintext.count, &length) == 1
            else { return false }
            return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, base + plaintext.count) == 1
        }
        return ok ? out : nil
    }

    static func openSSLOpen(key: [UInt8], nonce: [UInt8], sealed: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard sealed.count >= 16, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let count = sealed.count - 16
        var out = [UInt8](repeating: 0, count: count + 16)
        var tag = Array(sealed[count...])
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1,
            aad.isEmpty || EVP_DecryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1
        else { return nil }
        let ok = out.withUnsafeMutableBufferPointer { output -> Bool in
            let base = output.baseAddress!
            guard count == 0 || EVP_DecryptUpdate(context, base, &length, sealed, Int32(count)) == 1,
                EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1
            else { return false }
            return EVP_DecryptFinal_ex(context, base + count, &length) == 1
        }
        if !ok { ERR_clear_error() }
        return ok ? Array(out.prefix(count)) : nil
    }
}
