internal import COpenSSL
import TenantEdgeCore

/// Tenant data keys sealed for a region, as bundles carry them: AES-256-GCM under the region KEK,
/// AAD `tenant-key:<id>:<version>`, layout `nonce 12 | ciphertext | tag 16`. One-shot EVP calls:
/// this runs when a bundle is built or applied, never per request.
public enum KeyWrap {
    public static func aad(tenant: String, version: UInt32) -> [UInt8] { Array("tenant-key:\(tenant):\(version)".utf8) }
    /// The AAD of a tenant's naming key (the digest key that does not rotate).
    public static func namingAAD(tenant: String) -> [UInt8] { Array("tenant-name-key:\(tenant)".utf8) }
    /// Associated data of a tenant's Redis URL sealed into a bundle (it may carry a password).
    public static func redisURLAAD(tenant: String) -> [UInt8] { Array("tenant-redis-url:\(tenant)".utf8) }

    public static func seal(_ key: [UInt8], kek: [UInt8], aad: [UInt8]) throws(EdgeError) -> [UInt8] {
        let nonce = try OpenSSL.randomBytes(12)
        var out = nonce + [UInt8](repeating: 0, count: key.count + 16)
        let ok = try run(
            encrypt: true, kek: kek, nonce: nonce, aad: aad, input: key, output: &out, outputOffset: 12,
            tag: nil)
        try OpenSSL.check(ok, "AES-256-GCM key seal")
        return out
    }

    /// The key inside `wrapped`, or nil when it does not open under `kek` with `aad` (wrong KEK,
    /// another tenant or version, or changed bytes).
    public static func open(_ wrapped: [UInt8], kek: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard wrapped.count > 28, kek.count == 32 else { return nil }
        let nonce = Array(wrapped[0..<12])
        let tag = Array(wrapped.suffix(16))
        let body = Array(wrapped[12..<(wrapped.count - 16)])
        var out = [UInt8](repeating: 0, count: body.count)
        guard
            (try? run(
                encrypt: false, kek: kek, nonce: nonce, aad: aad, input: body, output: &out, outputOffset: 0, tag: tag))
                == true
        else {
            OpenSSL.cleanse(&out)
            return nil
        }
        return out
    }

    /// Zeroes key bytes that are no longer needed.
    public static func wipe(_ key: inout [UInt8]) {
        OpenSSL.cleanse(&key)
    }

    private static func run(
        encrypt: Bool, kek: [UInt8], nonce: [UInt8], aad: [UInt8], input: [UInt8], output: inout [UInt8],
        outputOffset: Int, tag: [UInt8]?
    ) throws(EdgeError) -> Bool {
        guard kek.count == 32 else { throw EdgeError(.cryptoFailure, "a KEK must be 32 bytes") }
        guard let context = EVP_CIPHER_CTX_new() else { throw OpenSSL.failure("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        var length: Int32 = 0
        let initialized = kek.withUnsafeBufferPointer { key in
            nonce.withUnsafeBufferPointer { iv in
                encrypt
                    ? EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key.baseAddress, iv.baseAddress)
                    : EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key.baseAddress, iv.baseAddress)
            }
        }
        guard initialized == 1 else { return false }
        let update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate
        guard aad.withUnsafeBufferPointer({ update(context, nil, &length, $0.baseAddress, Int32($0.count)) }) == 1
        else { return false }
        let tagCount = 16
        return output.withUnsafeMutableBufferPointer { out -> Bool in
            let base = out.baseAddress! + outputOffset
            guard
                input.withUnsafeBufferPointer({ update(context, base, &length, $0.baseAddress, Int32($0.count)) }) == 1
            else { return false }
            if encrypt {
                guard EVP_EncryptFinal_ex(context, base + Int(length), &length) == 1 else { return false }
                return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagCount), base + input.count) == 1
            }
            var expected = tag ?? []
            guard
                expected.withUnsafeMutableBytes({
                    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagCount), $0.baseAddress)
                }) == 1
            else { return false }
            return EVP_DecryptFinal_ex(context, base + Int(length), &length) == 1
        }
    }
}
