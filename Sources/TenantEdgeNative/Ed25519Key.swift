internal import COpenSSL
import TenantEdgeCore

/// An Ed25519 key held by OpenSSL (`EVP_PKEY`), freed in `deinit`: the origin's signing key for
/// config bundles, or (public part only) the key every node pins to verify them. PEM in and out,
/// signatures through `EVP_DigestSign`/`EVP_DigestVerify` (Ed25519 signs the whole message, no
/// separate digest).
public final class Ed25519Key: @unchecked Sendable {  // the EVP_PKEY is never mutated after init
    private let key: OpaquePointer
    /// True when the private half is held (a signing key).
    public let canSign: Bool

    private init(taking key: OpaquePointer, canSign: Bool) {
        self.key = key
        self.canSign = canSign
    }

    deinit { EVP_PKEY_free(key) }

    /// A new random signing key.
    public static func generate() throws(EdgeError) -> Ed25519Key {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "ED25519", nil) else {
            throw OpenSSL.failure("EVP_PKEY_CTX_new_from_name(ED25519)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_generate(context, &key) == 1, let key else {
            throw OpenSSL.failure("EVP_PKEY_generate(ED25519)")
        }
        return Ed25519Key(taking: key, canSign: true)
    }

    /// Reads a PEM key: `PRIVATE KEY` (signing) or `PUBLIC KEY` (verifying). `name` is the config
    /// key or file named in errors; the key material never is.
    public convenience init(pem: [UInt8], name: String) throws(EdgeError) {
        let isPrivate = String(decoding: pem.prefix(64), as: UTF8.self).contains("PRIVATE KEY")
        let loaded: OpaquePointer? = pem.withUnsafeBytes { bytes in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        ERR_clear_error()
        guard let loaded else { throw EdgeError(.invalidConfig, "\(name): not a PEM Ed25519 key") }
        guard EVP_PKEY_get_base_id(loaded) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(loaded)
            throw EdgeError(.invalidConfig, "\(name): the key is not Ed25519")
        }
        self.init(taking: loaded, canSign: isPrivate)
    }

    /// The public half as PEM (`PUBLIC KEY`).
    public func publicPEM() throws(EdgeError) -> [UInt8] {
        try Self.writePEM("PEM_write_bio_PUBKEY") { bio in PEM_write_bio_PUBKEY(bio, key) }
    }

    /// The private half as unencrypted PKCS#8 PEM, for `edgectl keygen` to write with mode 0600.
    public func privatePEM() throws(EdgeError) -> [UInt8] {
        guard canSign else { throw EdgeError(.cryptoFailure, "a public key has no private half") }
        return try Self.writePEM("PEM_write_bio_PrivateKey") { bio in
            PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil)
        }
    }

    /// The 64-byte Ed25519 signature of `message`.
    public func sign(_ message: [UInt8]) throws(EdgeError) -> [UInt8] {
        guard canSign else { throw EdgeError(.cryptoFailure, "a public key cannot sign") }
        guard let context = EVP_MD_CTX_new() else { throw OpenSSL.failure("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok =
            EVP_DigestSignInit(context, nil, nil, nil, key) == 1
            && message.withUnsafeBufferPointer { input in
                signature.withUnsafeMutableBufferPointer { output in
                    EVP_DigestSign(context, output.baseAddress, &length, input.baseAddress, input.count) == 1
                }
            }
        try OpenSSL.check(ok && length == 64, "EVP_DigestSign(Ed25519)")
        return signature
    }

    /// True only when `signature` is this key's valid signature of exactly `message`.
    public func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        let ok =
            EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
            && signature.withUnsafeBufferPointer { sig in
                message.withUnsafeBufferPointer { input in
                    EVP_DigestVerify(context, sig.baseAddress, sig.count, input.baseAddress, input.count) == 1
                }
            }
        ERR_clear_error()
        return ok
    }

    private static func writePEM(_ call: String, _ write: (OpaquePointer) -> Int32) throws(EdgeError) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSL.failure("BIO_new") }
        defer { BIO_free(bio) }
        try OpenSSL.check(write(bio) == 1, call)
        var data: UnsafeMutablePointer<CChar>? = nil
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)  // BIO_get_mem_data is a macro over this
        guard length > 0, let data else { throw OpenSSL.failure(call) }
        return Array(UnsafeRawBufferPointer(start: data, count: length))
    }
}
