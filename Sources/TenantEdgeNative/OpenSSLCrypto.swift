internal import COpenSSL
import Synchronization
import TenantEdgeCore

/// Everything TenantEdge needs from libcrypto (OpenSSL 3) but the tenant cipher's AES-256-GCM
/// (`AESGCMKey`, BoringSSL): HMAC-SHA256 from precomputed SHA-256 states, HKDF-SHA256, SHA-256 and
/// random bytes (key wrapping, `KeyWrap`, is OpenSSL's AES-256-GCM too).
/// Unsafe pointers stay inside this file; C failures become `EdgeError` in `check`.
public enum OpenSSL {
    /// Cryptographically strong random bytes.
    public static func randomBytes(_ count: Int) throws(EdgeError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes {
            RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(count))
        }
        try check(ok == 1, "RAND_bytes")
        return out
    }

    /// Overwrites secret bytes (a key, a pad block) before their memory goes back to the allocator:
    /// the one way the package wipes an array (`KeyWrap.wipe` is this too). Only for an array this
    /// code alone holds: a shared one is copied on write, and the copy is wiped.
    public static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    /// SHA-256 of `data` (admin token digests, audit chain).
    public static func sha256(_ data: some Collection<UInt8>) -> [UInt8] {
        digest(Array(data), EVP_sha256(), count: 32)
    }

    /// SHA-1 as lowercase hex: only for naming Redis Lua scripts (`EVALSHA`), never for security.
    public static func sha1Hex(_ text: String) -> String { Hex.encode(digest(Array(text.utf8), EVP_sha1(), count: 20)) }

    /// One-shot `EVP_Digest` with a message digest that cannot fail for in-memory input.
    private static func digest(_ input: [UInt8], _ md: OpaquePointer?, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var length: UInt32 = 0
        let ok = input.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { target in
                EVP_Digest(
                    source.baseAddress, input.count, target.baseAddress!.assumingMemoryBound(to: UInt8.self), &length,
                    md, nil)
            }
        }
        precondition(ok == 1 && Int(length) == count, "EVP_Digest failed")
        return out
    }

    /// HKDF-SHA256 (RFC 5869) through `EVP_KDF`.
    public static func hkdf(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int = 32) throws(EdgeError) -> [UInt8] {
        guard let kdf = EVP_KDF_fetch(nil, "HKDF", nil) else { throw failure("EVP_KDF_fetch(HKDF)") }
        defer { EVP_KDF_free(kdf) }
        guard let context = EVP_KDF_CTX_new(kdf) else { throw failure("EVP_KDF_CTX_new") }
        defer { EVP_KDF_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: count)
        // Mutable copies, because OSSL_PARAM takes non-const pointers; the key's is wiped after.
        var key = key
        defer { cleanse(&key) }
        var salt = salt
        var info = info
        // OSSL_PARAM keeps raw pointers to names and buffers: everything stays pinned for the whole call.
        let ok = withParamNames { names in
            key.withUnsafeMutableBytes { keyBytes in
                salt.withUnsafeMutableBytes { saltBytes in
                    info.withUnsafeMutableBytes { infoBytes in
                        out.withUnsafeMutableBytes { output in
                            // Empty salt or info are left out: a NULL buffer is not a valid octet string param.
                            var params = [
                                OSSL_PARAM_construct_utf8_string(names.digest, names.sha256, 0),
                                OSSL_PARAM_construct_octet_string(names.key, keyBytes.baseAddress, keyBytes.count),
                            ]
                            if saltBytes.count > 0 {
                                params.append(
                                    OSSL_PARAM_construct_octet_string(
                                        names.salt, saltBytes.baseAddress, saltBytes.count))
                            }
                            if infoBytes.count > 0 {
                                params.append(
                                    OSSL_PARAM_construct_octet_string(
                                        names.info, infoBytes.baseAddress, infoBytes.count))
                            }
                            params.append(OSSL_PARAM_construct_end())
                            return EVP_KDF_derive(
                                context, output.baseAddress!.assumingMemoryBound(to: UInt8.self), count, &params)
                        }
                    }
                }
            }
        }
        try check(ok == 1, "EVP_KDF_derive(HKDF)")
        return out
    }

    /// Parameter names as C strings that stay valid for the whole closure (OSSL_PARAM stores the
    /// pointers, so a Swift literal's temporary pointer would dangle).
    struct ParamNames {
        var digest, key, salt, info: UnsafePointer<CChar>
        var sha256: UnsafeMutablePointer<CChar>
    }

    static func failure(_ call: String) -> EdgeError {
        let code = ERR_get_error()
        ERR_clear_error()
        return EdgeError(.cryptoFailure, "OpenSSL \(call) failed (error 0x\(String(code, radix: 16)))")
    }

    static func check(_ ok: Bool, _ call: String) throws(EdgeError) {
        if !ok { throw failure(call) }
    }
}

func withParamNames<Result>(_ body: (OpenSSL.ParamNames) -> Result) -> Result {
    var storage = Array("digest\u{0}key\u{0}salt\u{0}info\u{0}SHA256\u{0}".utf8CString)
    return storage.withUnsafeMutableBufferPointer { buffer in
        let base = buffer.baseAddress!
        return body(
            OpenSSL.ParamNames(digest: base, key: base + 7, salt: base + 11, info: base + 16, sha256: base + 21))
    }
}

/// HMAC-SHA256 under one key, from the SHA-256 states after the key's inner and outer pad blocks,
/// made once (RFC 2104's construction over OpenSSL's SHA-256; `te_hmac_sha256` in the shim). A
/// digest copies both states onto the caller's stack: no context is allocated, duplicated or
/// shared between cores. The `EVP_MAC` context it replaces, re-initialised per digest, duplicated
/// and freed two digest contexts each time: two allocations and two cleanses per hit, and about
/// a tenth of an L1 hit's instructions (decision 67).
public final class HMACSHA256: @unchecked Sendable {
    // @unchecked: both states are written once, in `init`, and only read (copied) after that.
    /// The SHA-256 states after the key's inner and outer pad blocks: equivalent to the key, so they
    /// live in memory of their own and are cleansed when the digester goes.
    private let states: UnsafeMutablePointer<SHA256_CTX>

    public init(key: [UInt8]) throws(EdgeError) {
        // RFC 2104: a key longer than the 64-byte block is hashed first; a shorter one is padded with zeros.
        var block = [UInt8](repeating: 0, count: 64)
        defer { OpenSSL.cleanse(&block) }
        if key.count > 64 {
            var hashed = [UInt8](repeating: 0, count: 32)
            defer { OpenSSL.cleanse(&hashed) }
            guard SHA256(key, key.count, &hashed) != nil else { throw OpenSSL.failure("SHA256") }
            block.replaceSubrange(0..<32, with: hashed)
        } else {
            block.replaceSubrange(0..<key.count, with: key)
        }
        var inner = block.map { $0 ^ 0x36 }
        var outer = block.map { $0 ^ 0x5c }
        defer {
            OpenSSL.cleanse(&inner)
            OpenSSL.cleanse(&outer)
        }
        precondition(inner.count == 64 && outer.count == 64, "te_sha256_pad_state reads 64 bytes")
        // Made in a local first: `self.states` is set only once both are ready, so a failure here
        // never reaches `deinit` (which would cleanse and free them a second time).
        let made = UnsafeMutablePointer<SHA256_CTX>.allocate(capacity: 2)
        guard te_sha256_pad_state(made, inner) == 1, te_sha256_pad_state(made + 1, outer) == 1 else {
            OPENSSL_cleanse(made, 2 * MemoryLayout<SHA256_CTX>.stride)
            made.deallocate()
            throw OpenSSL.failure("SHA256_Init")
        }
        states = made
    }

    deinit {
        OPENSSL_cleanse(states, 2 * MemoryLayout<SHA256_CTX>.stride)
        states.deallocate()
    }

    /// HMAC of `prefix` followed by `data` (fed in two parts: nothing is concatenated). Any thread
    /// may call it: each digest copies the two states onto its own stack.
    public func mac(
        prefix: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        _ data: UnsafeRawBufferPointer
    ) -> KeyDigest {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &words) { out in
            te_hmac_sha256(
                states, states + 1, prefix.baseAddress?.assumingMemoryBound(to: UInt8.self), prefix.count,
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
                out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(ok == 1, "HMAC-SHA256 failed")
        return KeyDigest(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    public func mac(_ text: String) -> KeyDigest {
        var text = text
        return text.withUTF8 { mac(UnsafeRawBufferPointer($0)) }
    }

    /// HMAC of the domain byte, a NUL, then `text`: the same digest as `mac("k\u{0}" + text)`.
    public func mac(domain: UInt8, _ text: String) -> KeyDigest {
        var text = text
        let prefix: (UInt8, UInt8) = (domain, 0)
        return withUnsafeBytes(of: prefix) { prefix in text.withUTF8 { mac(prefix: prefix, UnsafeRawBufferPointer($0)) }
        }
    }
}
