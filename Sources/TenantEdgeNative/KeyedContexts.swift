internal import COpenSSL
import Synchronization
import TenantEdgeCore

/// The AES-256-GCM contexts of one tenant key version, keyed once: one per worker lane and
/// direction, used by that lane's thread alone, and a small locked pool for threads without a
/// lane. Owns the derived key (wiped in `deinit`) and every context (freed in `deinit`).
final class KeyedContexts: @unchecked Sendable {
    // @unchecked: `aeadKey` is only read after init; lane contexts belong to their lane's thread;
    // pooled contexts are used by the one thread that popped them.
    private let cipher: OpaquePointer
    private var aeadKey: [UInt8]
    private let encryptLanes = LaneLocal<OpaquePointer>()
    private let decryptLanes = LaneLocal<OpaquePointer>()
    private let pool = Mutex<(encrypt: [Pooled], decrypt: [Pooled])>(([], []))
    private static let maxPooled = 16

    /// A pooled context; only ever used by the one thread that popped it.
    private struct Pooled: @unchecked Sendable { let pointer: OpaquePointer }

    init(cipher: OpaquePointer, aeadKey: [UInt8]) {
        self.cipher = cipher
        self.aeadKey = aeadKey
        EVP_CIPHER_up_ref(cipher)  // freed in deinit, after every context made with it
    }

    deinit {
        for context in encryptLanes.madeValues + decryptLanes.madeValues { EVP_CIPHER_CTX_free(context) }
        pool.withLock { pooled in
            for context in pooled.encrypt + pooled.decrypt { EVP_CIPHER_CTX_free(context.pointer) }
        }
        aeadKey.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
        EVP_CIPHER_free(cipher)
    }

    /// Runs `body` with a context keyed for this version and direction; the caller sets the nonce.
    func withContext<Result>(encrypt: Bool, _ body: (OpaquePointer) -> Result) throws(EdgeError) -> Result {
        let lanes = encrypt ? encryptLanes : decryptLanes
        if let result = lanes.withValue(make: { makeContext(encrypt: encrypt) }, { body($0) }) { return result }
        let popped = pool.withLock { encrypt ? $0.encrypt.popLast() : $0.decrypt.popLast() }
        guard let context = popped?.pointer ?? makeContext(encrypt: encrypt) else {
            throw OpenSSL.failure("EVP_CipherInit_ex2(AES-256-GCM)")
        }
        defer {
            let kept = pool.withLock { pooled -> Bool in
                if encrypt, pooled.encrypt.count < Self.maxPooled {
                    pooled.encrypt.append(Pooled(pointer: context))
                } else if !encrypt, pooled.decrypt.count < Self.maxPooled {
                    pooled.decrypt.append(Pooled(pointer: context))
                } else {
                    return false
                }
                return true
            }
            if !kept { EVP_CIPHER_CTX_free(context) }
        }
        return body(context)
    }

    /// A new context keyed for this version; nil when OpenSSL fails.
    private func makeContext(encrypt: Bool) -> OpaquePointer? {
        guard let context = EVP_CIPHER_CTX_new() else { return nil }
        let ok = aeadKey.withUnsafeBufferPointer { key in
            encrypt
                ? EVP_EncryptInit_ex2(context, cipher, key.baseAddress, nil, nil)
                : EVP_DecryptInit_ex2(context, cipher, key.baseAddress, nil, nil)
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(context)
            return nil
        }
        return context
    }
}
