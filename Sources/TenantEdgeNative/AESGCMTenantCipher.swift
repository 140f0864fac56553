internal import COpenSSL
import Synchronization
import TenantEdgeCore

/// A tenant's cipher over OpenSSL: AES-256-GCM sealing and HMAC-SHA256 digests, with keys derived
/// by HKDF from the tenant key of each version.
///
/// Sealed layout: `version u32 | nonce 12 | ciphertext | tag 16`; the GCM associated data is the
/// caller's AAD followed by the version, so the version cannot be swapped either.
///
/// Speed: the cipher is fetched once and every context is keyed once. Each worker lane (event loop)
/// keeps its own keyed context per key version and direction, so a hit sets only the nonce and
/// takes no lock; threads without a lane use a small locked pool (the notes measured a fresh
/// context per hit at about 25 % of hit throughput).
public final class AESGCMTenantCipher: TenantCipher, @unchecked Sendable {
    // @unchecked: `cipher` and `versions` are immutable after init; lane contexts are used by their
    // own thread only, pooled ones by the one thread that popped them.
    public let keyVersion: UInt32
    public var encrypts: Bool { true }

    private static let nonceCount = 12
    private static let tagCount = 16
    private static let headerCount = 4 + nonceCount

    private let cipher: OpaquePointer
    private let digester: HMACSHA256
    private let versions: [UInt32: KeyedContexts]
    /// `versions[keyVersion]`, without the dictionary lookup: what every seal and most opens use.
    private let current: KeyedContexts

    /// - Parameters:
    ///   - keys: tenant data keys by version (32 bytes each); the highest is current.
    ///   - namingKey: the key digests derive from, which does not rotate, so a new data key version
    ///     keeps every entry's name (nil: derived from the current data key).
    public init(keys: [UInt32: [UInt8]], namingKey: [UInt8]? = nil) throws(EdgeError) {
        guard let currentVersion = keys.keys.max(), let currentKey = keys[currentVersion] else {
            throw EdgeError(.cryptoFailure, "a tenant cipher needs at least one key version")
        }
        guard let fetched = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            throw OpenSSL.failure("EVP_CIPHER_fetch(AES-256-GCM)")
        }
        cipher = fetched
        keyVersion = currentVersion
        var derived: [UInt32: KeyedContexts] = [:]
        do throws(EdgeError) {
            for (version, key) in keys {
                guard key.count == 32 else {
                    throw EdgeError(.cryptoFailure, "tenant key version \(version) is not 32 bytes")
                }
                derived[version] = KeyedContexts(
                    cipher: fetched, aeadKey: try OpenSSL.hkdf(key: key, salt: [], info: Array("te-aead-v1".utf8)))
            }
            digester = try HMACSHA256(
                key: OpenSSL.hkdf(key: namingKey ?? currentKey, salt: [], info: Array("te-digest-v1".utf8)))
        } catch {
            derived.removeAll()  // their contexts are freed before the cipher they were made with
            EVP_CIPHER_free(fetched)
            throw error
        }
        versions = derived
        current = derived[currentVersion]!  // inserted above: the loop covers every version
    }

    deinit {
        EVP_CIPHER_free(cipher)  // reference counted: the contexts made with it keep it alive until freed
    }

    public func digest(_ text: String) -> KeyDigest { digester.mac(text) }
    public func digest(domain: UInt8, _ text: String) -> KeyDigest { digester.mac(domain: domain, text) }

    public func holdsKey(version: UInt32) -> Bool { versions[version] != nil }

    public func plaintextCount(ofSealedCount count: Int) -> Int? {
        count >= Self.headerCount + Self.tagCount ? count - Self.headerCount - Self.tagCount : nil
    }

    public func seal(_ plaintext: [UInt8], aad: [UInt8]) throws(EdgeError) -> [UInt8] {
        let nonce = try OpenSSL.randomBytes(Self.nonceCount)
        var out = [UInt8](repeating: 0, count: Self.headerCount + plaintext.count + Self.tagCount)
        out[0] = UInt8(keyVersion >> 24)
        out[1] = UInt8((keyVersion >> 16) & 0xFF)
        out[2] = UInt8((keyVersion >> 8) & 0xFF)
        out[3] = UInt8(keyVersion & 0xFF)
        out.replaceSubrange(4..<Self.headerCount, with: nonce)
        let ok = try current.withContext(encrypt: true) { context in
            out.withUnsafeMutableBytes { output -> Bool in
                let base = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
                var length: Int32 = 0
                guard EVP_EncryptInit_ex2(context, nil, nil, base + 4, nil) == 1 else { return false }
                // The associated data is the caller's AAD, then the version (GCM takes it in parts).
                guard
                    aad.withUnsafeBufferPointer({
                        EVP_EncryptUpdate(context, nil, &length, $0.baseAddress, Int32($0.count))
                    }) == 1, EVP_EncryptUpdate(context, nil, &length, base, 4) == 1
                else { return false }
                guard
                    plaintext.withUnsafeBufferPointer({
                        EVP_EncryptUpdate(context, base + Self.headerCount, &length, $0.baseAddress, Int32($0.count))
                    }) == 1
                else { return false }
                guard EVP_EncryptFinal_ex(context, base + Self.headerCount + Int(length), &length) == 1 else {
                    return false
                }
                return EVP_CIPHER_CTX_ctrl(
                    context, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagCount),
                    base + Self.headerCount + plaintext.count) == 1
            }
        }
        try OpenSSL.check(ok, "AES-256-GCM seal")
        return out
    }

    public func open(
        sealedBytes sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(EdgeError) -> Int {
        // A record is never empty: a zero count would also leave `output` without an address.
        guard let count = plaintextCount(ofSealedCount: sealed.count), count > 0, output.count >= count,
            let input = sealed.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let target = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else {
            throw EdgeError(.decryptFailed, "sealed value is malformed")
        }
        let version = UInt32(sealed[0]) << 24 | UInt32(sealed[1]) << 16 | UInt32(sealed[2]) << 8 | UInt32(sealed[3])
        guard let keys = version == keyVersion ? current : versions[version] else {
            throw EdgeError(.decryptFailed, "entry sealed under key version \(version), which this node does not hold")
        }
        let ok = try keys.withContext(encrypt: false) { context -> Bool in
            var length: Int32 = 0
            guard EVP_DecryptInit_ex2(context, nil, nil, input + 4, nil) == 1 else { return false }
            guard
                EVP_DecryptUpdate(
                    context, nil, &length, aad.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(aad.count))
                    == 1, EVP_DecryptUpdate(context, nil, &length, input, 4) == 1
            else { return false }
            guard EVP_DecryptUpdate(context, target, &length, input + Self.headerCount, Int32(count)) == 1 else {
                return false
            }
            let tag = UnsafeMutableRawPointer(mutating: input + Self.headerCount + count)
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagCount), tag) == 1 else {
                return false
            }
            return EVP_DecryptFinal_ex(context, target + Int(length), &length) == 1
        }
        guard ok else {
            ERR_clear_error()  // a failed tag check leaves an error on this thread's queue
            throw EdgeError(.decryptFailed, "entry failed authentication: changed, moved, or sealed under another key")
        }
        return count
    }
}
