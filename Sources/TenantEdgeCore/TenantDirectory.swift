/// Resolves a request's `Host` to its tenant: port ignored, case-insensitive, trailing dot ignored.
/// Built once per configuration and read-only after, so lookups need no lock.
public struct TenantDirectory: Sendable {
    private let byHost: [String: Int]
    public let tenants: [TenantConfig]

    public init(_ tenants: [TenantConfig]) {
        var byHost: [String: Int] = [:]
        for (index, tenant) in tenants.enumerated() {
            for host in tenant.hosts { byHost[Self.normalize(host: host)] = index }
        }
        self.byHost = byHost
        self.tenants = tenants
    }

    /// Hosts arrive already normalized almost always, so the raw value is tried first and the
    /// normalizing (allocating) lookup only runs when that misses.
    public func tenant(forHost host: String) -> TenantConfig? {
        if let index = byHost[host] { return tenants[index] }
        guard let index = byHost[Self.normalize(host: host)] else { return nil }
        return tenants[index]
    }

    public func tenant(id: String) -> TenantConfig? { tenants.first { $0.id == id } }

    /// Lower-cases and drops the port (`Host: API.Acme.test:8080` → `api.acme.test`), keeping IPv6 literals.
    public static func normalize(host: String) -> String {
        var value = Substring(host)
        if value.hasPrefix("[") {
            if let close = value.firstIndex(of: "]") { value = value[...close] }
        } else if let colon = value.lastIndex(of: ":") {
            value = value[..<colon]
        }
        if value.hasSuffix(".") { value = value.dropLast() }
        return value.lowercased()
    }
}
