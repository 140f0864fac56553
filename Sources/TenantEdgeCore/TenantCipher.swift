/// The port through which the core seals, opens and digests a tenant's cache data. The real
/// implementation is `AESGCMTenantCipher` in TenantEdgeNative (AES-256-GCM through BoringSSL,
/// HMAC-SHA256 through OpenSSL); the core only needs
/// the guarantees: `open` fails for anything not sealed by this tenant key with the same AAD, and
/// `digest` is a keyed function unguessable without the tenant key.
public protocol TenantCipher: Sendable {
    /// The key version new entries are sealed under.
    var keyVersion: UInt32 { get }
    /// Whether `seal` really encrypts (false only with `encryption: false`).
    var encrypts: Bool { get }
    /// Keyed digest of a cache key, tag or prefix.
    func digest(_ text: String) -> KeyDigest
    /// `digest` of the domain byte, a NUL, then `text` (`"k\u{0}" + target`, say), without building
    /// that string: the hit path digests every target this way.
    func digest(domain: UInt8, _ text: String) -> KeyDigest
    /// Seals `plaintext`, binding it to `aad`. The result carries its key version.
    func seal(_ plaintext: [UInt8], aad: [UInt8]) throws(EdgeError) -> [UInt8]
    /// Plaintext length of a sealed value of `count` bytes, or nil when that is malformed.
    func plaintextCount(ofSealedCount count: Int) -> Int?
    /// Opens `sealed` into `output` (at least `plaintextCount` bytes); returns the bytes written.
    /// Throws `.decryptFailed` for a value that was changed, moved, or sealed under another key.
    /// Raw bytes: a stored entry is opened where it lies in its partition's slab. A cipher may
    /// refuse a value whose plaintext is empty (no `ResponseRecord` is).
    func open(
        sealedBytes sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(EdgeError) -> Int
    /// Whether values sealed under `version` can still be opened (false once a version is retired).
    func holdsKey(version: UInt32) -> Bool
}

extension TenantCipher {
    public func digest(domain: UInt8, _ text: String) -> KeyDigest {
        digest(String(UnicodeScalar(domain)) + "\u{0}" + text)
    }

    /// Ciphers with a single key (or none) hold every version they are asked about.
    public func holdsKey(version: UInt32) -> Bool { true }

    public func plaintextCount(ofSealed sealed: [UInt8]) -> Int? { plaintextCount(ofSealedCount: sealed.count) }

    /// Opens sealed bytes held in an array (values read from L2, tests), without each cipher
    /// having to take both forms.
    public func open(_ sealed: [UInt8], aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
        throws(EdgeError) -> Int
    {
        let result = sealed.withUnsafeBytes { bytes in
            Result { () throws(EdgeError) -> Int in try open(sealedBytes: bytes, aad: aad, into: output) }
        }
        return try result.get()
    }

    /// Opens with the associated data in an array; for tests and the cold paths.
    public func open(_ sealed: [UInt8], aad: [UInt8], into output: UnsafeMutableRawBufferPointer) throws(EdgeError)
        -> Int
    {
        let result = aad.withUnsafeBytes { aad in
            Result { () throws(EdgeError) -> Int in try open(sealed, aad: aad, into: output) }
        }
        return try result.get()
    }

    /// Opens into a new array; for tests and the cold paths. The hit path opens into its response buffer.
    public func open(_ sealed: [UInt8], aad: [UInt8]) throws(EdgeError) -> [UInt8] {
        guard let count = plaintextCount(ofSealed: sealed) else {
            throw EdgeError(.decryptFailed, "sealed value is malformed")
        }
        var output = [UInt8](repeating: 0, count: count)
        let result = output.withUnsafeMutableBytes { buffer in
            Result { () throws(EdgeError) -> Int in try open(sealed, aad: aad, into: buffer) }
        }
        let written = try result.get()
        output.removeLast(count - written)
        return output
    }
}

/// Supplies each tenant's cipher for its current key; nil for a tenant with no key (not served).
public protocol TenantKeyring: Sendable {
    func cipher(forTenant tenant: String) -> (any TenantCipher)?
}

/// The associated data that binds a sealed entry to its place: tenant id, namespace and the key
/// digest (then the entry's metadata header, `TenantCache.aad(_:for:)`), so a value copied under
/// another tenant's or another key's name fails to open.
public enum EntryBinding {
    public static let namespace = "http"

    /// `te:<tenant>:<namespace>:`, the start of every entry's associated data.
    public static func prefix(tenant: String, namespace: String = namespace) -> [UInt8] {
        Array("te:\(tenant):\(namespace):".utf8)
    }

    /// `te:<tenant>:<namespace>:<base64url digest>`: the stored key, identical in L1 and L2.
    public static func storageKey(tenant: String, namespace: String = namespace, digest: KeyDigest) -> String {
        "te:\(tenant):\(namespace):\(digest.base64URL)"
    }
}
