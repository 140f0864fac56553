import TenantEdgeCore

/// Tenant keys from a config bundle: each tenant's data keys arrive sealed under the region KEK and
/// are opened here, in memory only; the raw key bytes are wiped as soon as the cipher has derived
/// its working keys. Tenants without wrapped keys fall back to `standalone` (master-key derived).
/// A key that does not open (wrong KEK, changed bytes, another tenant's key) refuses the whole set.
public struct EnvelopeKeyring: TenantKeyring {
    private let ciphers: [String: any TenantCipher]

    public init(kek: [UInt8]?, tenants: [TenantConfig], standalone: StandaloneKeyring?) throws(EdgeError) {
        var ciphers: [String: any TenantCipher] = [:]
        for (index, tenant) in tenants.enumerated() {
            guard !tenant.wrappedKeys.isEmpty else {
                if let cipher = standalone?.cipher(forTenant: tenant.id) { ciphers[tenant.id] = cipher }
                continue
            }
            guard let kek else {
                throw EdgeError(.invalidConfig, "security.kek_file: needed to open the keys of tenant '\(tenant.id)'")
            }
            var keys: [UInt32: [UInt8]] = [:]
            for wrapped in tenant.wrappedKeys {
                guard
                    let key = KeyWrap.open(
                        wrapped.wrapped, kek: kek, aad: KeyWrap.aad(tenant: tenant.id, version: wrapped.version))
                else {
                    for version in keys.keys { KeyWrap.wipe(&keys[version]!) }
                    throw EdgeError(
                        .invalidConfig,
                        "tenants[\(index)].keys: version \(wrapped.version) of '\(tenant.id)' does not open "
                            + "under this node's KEK (security.kek_file)"
                    )
                }
                keys[wrapped.version] = key
            }
            var naming: [UInt8]? = nil
            if let wrapped = tenant.wrappedNamingKey {
                guard let key = KeyWrap.open(wrapped, kek: kek, aad: KeyWrap.namingAAD(tenant: tenant.id)) else {
                    for version in keys.keys { KeyWrap.wipe(&keys[version]!) }
                    throw EdgeError(
                        .invalidConfig,
                        "tenants[\(index)].naming_key of '\(tenant.id)' does not open under this node's KEK "
                            + "(security.kek_file)"
                    )
                }
                naming = key
            }
            defer {
                for version in keys.keys { KeyWrap.wipe(&keys[version]!) }
                if naming != nil { KeyWrap.wipe(&naming!) }
            }
            ciphers[tenant.id] = try AESGCMTenantCipher(keys: keys, namingKey: naming)
        }
        self.ciphers = ciphers
    }

    public func cipher(forTenant tenant: String) -> (any TenantCipher)? { ciphers[tenant] }
}
