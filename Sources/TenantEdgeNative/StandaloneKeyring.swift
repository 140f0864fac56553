import Foundation
import TenantEdgeCore

/// Tenant keys in standalone mode (no origin): each tenant's data key is HKDF-SHA256 of the node's
/// master key with info `tenant-key:<id>:<version>`, so every node given the same master key seals
/// and names entries identically, and no tenant key is ever stored.
public struct StandaloneKeyring: TenantKeyring {
    private let ciphers: [String: any TenantCipher]

    /// - Parameters:
    ///   - masterKey: 32 bytes from `security.master_key_file`; nil only with encryption off.
    ///   - encryption: false stores entries in clear (digests stay keyed).
    public init(masterKey: [UInt8]?, tenants: [TenantConfig], encryption: Bool, keyVersion: UInt32 = 1)
        throws(EdgeError)
    {
        var ciphers: [String: any TenantCipher] = [:]
        // Without a master key (encryption off) the digest key is random per process: names stay unguessable.
        let root: [UInt8]
        if let masterKey { root = masterKey } else { root = try OpenSSL.randomBytes(32) }
        for tenant in tenants {
            let key = try OpenSSL.hkdf(
                key: root, salt: Array("tenantedge".utf8), info: Array("tenant-key:\(tenant.id):\(keyVersion)".utf8))
            let naming = try OpenSSL.hkdf(
                key: root, salt: Array("tenantedge".utf8), info: Array("tenant-name-key:\(tenant.id)".utf8))
            ciphers[tenant.id] =
                encryption
                ? try AESGCMTenantCipher(keys: [keyVersion: key], namingKey: naming)
                : try PlaintextTenantCipher(
                    digestKey: OpenSSL.hkdf(key: key, salt: [], info: Array("te-digest-v1".utf8)))
        }
        self.ciphers = ciphers
    }

    public func cipher(forTenant tenant: String) -> (any TenantCipher)? { ciphers[tenant] }

    /// The password of the tenant's Redis ACL user under the `schema` strategy: HKDF-SHA256 of the
    /// master key with info `redis-acl:<tenant>`, as 64 hex characters. Every node (and `edgectl
    /// redis acl`) derives the same one; it is never written anywhere by the node.
    public static func redisACLPassword(masterKey: [UInt8], tenant: String) throws(EdgeError) -> String {
        Hex.encode(
            try OpenSSL.hkdf(key: masterKey, salt: Array("tenantedge".utf8), info: Array("redis-acl:\(tenant)".utf8)))
    }

    /// Reads a 32-byte key file (raw, or 64 hex characters with optional trailing newline).
    /// The error names the file and what is wrong with it, never its contents.
    public static func readKeyFile(_ path: String, key: String) throws(EdgeError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "\(key): cannot read '\(path)'")
        }
        let bytes = [UInt8](data)
        if bytes.count == 32 { return bytes }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 64, let decoded = Hex.decode(text) { return decoded }
        throw EdgeError(
            .invalidConfig, "\(key): '\(path)' must hold 32 raw bytes or 64 hex characters (found \(bytes.count) bytes)"
        )
    }
}

/// `encryption: false`: entries are stored in clear but still named by keyed digests, so nothing in
/// any index reveals a URL. Only allowed under `isolation_level: standard`.
public final class PlaintextTenantCipher: TenantCipher {
    public let keyVersion: UInt32 = 0
    public var encrypts: Bool { false }
    private let digester: HMACSHA256

    public init(digestKey: [UInt8]) throws(EdgeError) { digester = try HMACSHA256(key: digestKey) }

    public func digest(_ text: String) -> KeyDigest { digester.mac(text) }
    public func digest(domain: UInt8, _ text: String) -> KeyDigest { digester.mac(domain: domain, text) }
    public func seal(_ plaintext: [UInt8], aad: [UInt8]) throws(EdgeError) -> [UInt8] { plaintext }
    public func plaintextCount(ofSealedCount count: Int) -> Int? { count }
    public func open(
        sealedBytes sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(EdgeError) -> Int {
        guard output.count >= sealed.count else { throw EdgeError(.decryptFailed, "output buffer too small") }
        output.copyMemory(from: sealed)
        return sealed.count
    }
}
