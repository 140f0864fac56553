import TenantEdgeCore

// Implementation-only, not `internal`: without library evolution a client still loads a module's
// internal imports, and a client that also imports the system OpenSSL (TenantEdgeNative) then
// fails to build on the C structs both declare. Nothing of BoringSSL's appears in a declaration a
// client sees, or in the class's layout (the context is kept as a raw pointer).
@_implementationOnly import CCryptoBoringSSL

/// One AES-256-GCM key, scheduled once, through BoringSSL's AEAD interface: the BoringSSL that
/// swift-crypto builds on Linux (its symbols carry a `CCryptoBoringSSL_` prefix, so it sits beside
/// the system libcrypto without a clash). Debian's libcrypto 3.0 has no AES or GHASH code wider
/// than 128 bits and sets every GCM operation up through its parameter machinery; BoringSSL opens
/// 1 KiB in about a quarter of the time and 16 KiB in about a third on this CPU (decision 82). The
/// bytes are standard AES-256-GCM either way, so entries sealed by either library open with the
/// other.
///
/// BoringSSL lets any number of threads seal and open with one context at once (it only reads it),
/// so a key needs no per-lane copies and no lock. Owns the context: the key schedule is cleansed
/// and freed in `deinit`.
public final class AESGCMKey: @unchecked Sendable {
    // @unchecked: the context is written once, in `init`; seal and open only read it.

    /// AES-256: the only key size the tenant cipher derives.
    public static let keyCount = 32
    /// GCM's 96-bit nonce. BoringSSL itself refuses only an empty one (any other length would be
    /// hashed into a counter), so every call checks it is exactly this.
    public static let nonceCount = 12
    /// The full 128-bit tag: nothing shorter is written or accepted.
    public static let tagCount = 16

    /// The `EVP_AEAD_CTX`, untyped so the stored layout names no BoringSSL type (see the import).
    private let storage: UnsafeMutableRawPointer
    private var context: UnsafeMutablePointer<EVP_AEAD_CTX> { storage.assumingMemoryBound(to: EVP_AEAD_CTX.self) }

    /// Schedules `key` (32 bytes); the caller wipes its own copy.
    public init(_ key: [UInt8]) throws(EdgeError) {
        guard key.count == Self.keyCount else {
            throw EdgeError(.cryptoFailure, "an AES-256-GCM key is \(Self.keyCount) bytes, not \(key.count)")
        }
        let made = UnsafeMutablePointer<EVP_AEAD_CTX>.allocate(capacity: 1)
        CCryptoBoringSSL_EVP_AEAD_CTX_zero(made)
        let ok = key.withUnsafeBufferPointer {
            CCryptoBoringSSL_EVP_AEAD_CTX_init(
                made, CCryptoBoringSSL_EVP_aead_aes_256_gcm(), $0.baseAddress, Self.keyCount, Self.tagCount, nil)
        }
        guard ok == 1 else {
            CCryptoBoringSSL_OPENSSL_cleanse(made, MemoryLayout<EVP_AEAD_CTX>.size)
            made.deallocate()
            throw Self.failure("EVP_AEAD_CTX_init(AES-256-GCM)")
        }
        storage = UnsafeMutableRawPointer(made)
    }

    deinit {
        // GCM's cleanup frees nothing and wipes nothing: the key schedule lives inside the context,
        // so the cleanse is what takes it out of memory.
        CCryptoBoringSSL_EVP_AEAD_CTX_cleanup(context)
        CCryptoBoringSSL_OPENSSL_cleanse(context, MemoryLayout<EVP_AEAD_CTX>.size)
        context.deallocate()
    }

    /// Encrypts `plaintext` into `output` as the ciphertext followed by the tag, binding `aad`.
    /// `output` holds exactly `plaintext.count + tagCount` bytes and overlaps nothing else.
    public func seal(
        nonce: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(EdgeError) {
        guard nonce.count == Self.nonceCount, output.count == plaintext.count + Self.tagCount,
            let target = output.baseAddress
        else {
            throw EdgeError(.cryptoFailure, "AES-256-GCM seal called with a wrong nonce or output size")
        }
        var written = 0
        let ok = CCryptoBoringSSL_EVP_AEAD_CTX_seal(
            context, target.assumingMemoryBound(to: UInt8.self), &written, output.count, bytes(nonce), nonce.count,
            bytes(plaintext), plaintext.count, bytes(aad), aad.count)
        guard ok == 1 else { throw Self.failure("EVP_AEAD_CTX_seal(AES-256-GCM)") }
        guard written == output.count else {
            throw EdgeError(.cryptoFailure, "BoringSSL AES-256-GCM sealed \(written) bytes, not \(output.count)")
        }
    }

    /// Checks the tag at the end of `sealed` (ciphertext then tag) against `nonce` and `aad` and
    /// writes the plaintext to the start of `output`; its count, or nil when anything was changed,
    /// moved or sealed under another key. GCM decrypts before it checks the tag, and BoringSSL's
    /// contract is that a refused open fills `output` with zeros, so nothing unauthenticated stays
    /// (`AESGCMKeyTests` holds it to that). `output` must not be empty (an empty buffer has no
    /// address), even for an empty plaintext; the tenant cipher never seals one.
    public func open(
        nonce: UnsafeRawBufferPointer, sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard nonce.count == Self.nonceCount, sealed.count >= Self.tagCount,
            output.count >= sealed.count - Self.tagCount, let target = output.baseAddress
        else { return nil }
        var written = 0
        let ok = CCryptoBoringSSL_EVP_AEAD_CTX_open(
            context, target.assumingMemoryBound(to: UInt8.self), &written, output.count, bytes(nonce), nonce.count,
            bytes(sealed), sealed.count, bytes(aad), aad.count)
        guard ok == 1 else {
            CCryptoBoringSSL_ERR_clear_error()  // a failed tag check leaves an error on this thread's queue
            return nil
        }
        return written
    }

    /// BoringSSL takes a null pointer for an empty buffer only with a zero count, which is what an
    /// empty Swift buffer gives.
    private func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    /// A failed BoringSSL call as a typed error with BoringSSL's own reason, clearing the calling
    /// thread's error queue. Neither seal nor init fails for a well-formed key and buffers: one
    /// that does points at the build (a BoringSSL without AES-256-GCM) or at memory, not at a
    /// request, so the operator is told to report it.
    private static func failure(_ call: String) -> EdgeError {
        let code = CCryptoBoringSSL_ERR_get_error()
        var reason = [CChar](repeating: 0, count: 256)
        CCryptoBoringSSL_ERR_error_string_n(code, &reason, reason.count)
        CCryptoBoringSSL_ERR_clear_error()
        let text = String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return EdgeError(.cryptoFailure, "BoringSSL \(call) failed (\(text)); report this with the node's version")
    }
}
