import Foundation
import Synchronization
import TenantEdgeCore
import TenantEdgeNative
import Yams

/// The origin's tenant registry and the bundles built from it (interface sections 5 and 8).
/// Persisted in `<state_dir>/registry.json` (tenants and the last bundle version) and
/// `<state_dir>/bundles/<region>.signed` (the signature line, then the exact body), each written
/// durably, so a restarted origin serves the same bundles and keeps counting versions.
final class TenantRegistry: Sendable {
    private let directory: String
    private let regions: [RegionConfig]
    private let signingKey: Ed25519Key?
    private let clock: any CacheClock
    private let state: Mutex<(tenants: [TenantConfig], version: Int)>

    init(config: OriginConfig, clock: any CacheClock) throws(EdgeError) {
        directory = config.stateDir
        regions = config.regions.map(\.region)
        self.clock = clock
        if let path = config.signingKeyFile {
            guard let pem = FileManager.default.contents(atPath: path) else { throw EdgeError(.invalidConfig, "signing_key_file: cannot read \(path)") }
            signingKey = try Ed25519Key(pem: Array(pem), name: "signing_key_file")
            guard signingKey?.canSign == true else { throw EdgeError(.invalidConfig, "signing_key_file: a public key cannot sign bundles") }
        } else {
            signingKey = nil
        }
        var tenants = config.tenants
        var version = 0
        if let data = FileManager.default.contents(atPath: directory + "/registry.json") {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let saved = object["version"] as? Int,
                  let list = object["tenants"] as? [Any] else {
                throw EdgeError(.io, "\(directory)/registry.json: not a registry")
            }
            version = saved
            tenants = try list.map { item throws(EdgeError) in try Self.tenant(fromJSON: item, id: nil) }
        }
        state = Mutex((tenants, version))
    }

    var tenants: [TenantConfig] { state.withLock { $0.tenants } }

    /// Adds or replaces a tenant from its JSON (the fields of a node file's tenant); the id comes
    /// from the path and must match the body's when it has one.
    func put(id: String, json: [UInt8]) throws(EdgeError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) else { throw EdgeError(.badRequest, "tenant: not valid JSON") }
        let tenant = try Self.tenant(fromJSON: object, id: id)
        try update { tenants in
            if let index = tenants.firstIndex(where: { $0.id == id }) { tenants[index] = tenant } else { tenants.append(tenant) }
        }
    }

    /// Removes a tenant; false when there was none.
    func remove(id: String) throws(EdgeError) -> Bool {
        var removed = false
        try update { tenants in
            removed = tenants.contains { $0.id == id }
            tenants.removeAll { $0.id == id }
        }
        return removed
    }

    /// Builds, signs and stores the next bundle of every region; the new version and each region's
    /// signed bundle (signature header value, body).
    func publish() throws(EdgeError) -> (version: Int, bundles: [String: (signature: String, body: [UInt8])]) {
        guard let signingKey else { throw EdgeError(.invalidConfig, "signing_key_file: not set; the origin cannot sign bundles") }
        return try state.withLock { state throws(EdgeError) in
            let version = state.version + 1
            var bundles: [String: (String, [UInt8])] = [:]
            for region in regions {
                let object: [String: Any] = [
                    "version": version, "issued_at": AuditChain.timestamp(clock.now()),
                    "regions": regions.map { ["name": $0.name, "lat": $0.lat, "lon": $0.lon, "public_url": $0.publicURL] },
                    "tenants": state.tenants.map(Self.json),
                ]
                let body = Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
                let signature = "ed25519=" + Data(try signingKey.sign(body)).base64EncodedString()
                try FileManager.default.createDirectoryIfNeeded(directory + "/bundles")
                try ConfigBundleGate.writeDurably(Array((signature + "\n").utf8) + body, to: "\(directory)/bundles/\(region.name).signed")
                bundles[region.name] = (signature, body)
            }
            state.version = version
            try Self.save(state.tenants, version: version, to: directory)
            return (version, bundles)
        }
    }

    /// The latest signed bundle of a region, as stored.
    func bundle(region: String) -> (signature: String, body: [UInt8])? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/bundles/\(region).signed"),
              let newline = data.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return (String(decoding: data[..<newline], as: UTF8.self), Array(data[(newline + 1)...]))
    }

    private func update(_ change: (inout [TenantConfig]) -> Void) throws(EdgeError) {
        try state.withLock { state throws(EdgeError) in
            var tenants = state.tenants
            change(&tenants)
            try Self.save(tenants, version: state.version, to: directory)
            state.tenants = tenants
        }
    }

    private static func save(_ tenants: [TenantConfig], version: Int, to directory: String) throws(EdgeError) {
        try FileManager.default.createDirectoryIfNeeded(directory)
        let object: [String: Any] = ["version": version, "tenants": tenants.map(json)]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        try ConfigBundleGate.writeDurably(Array(data), to: directory + "/registry.json")
    }

    /// A tenant as in bundles and the registry file.
    static func json(_ tenant: TenantConfig) -> [String: Any] {
        var object: [String: Any] = ["id": tenant.id, "hosts": tenant.hosts, "upstream": tenant.upstream, "residency": tenant.residency,
                                     "geo_mode": tenant.geoMode.rawValue]
        if let quota = tenant.quotaBytes { object["quota_bytes"] = quota }
        if let ttl = tenant.defaultTTLSeconds { object["default_ttl_s"] = ttl }
        if let isolation = tenant.isolation { object["isolation"] = isolation.rawValue }
        if let url = tenant.redisURL { object["redis_url"] = url }
        return object
    }

    /// Reads one tenant with the node file's rules (every problem named), and checks it alone.
    static func tenant(fromJSON object: Any, id: String?) throws(EdgeError) -> TenantConfig {
        guard var fields = object as? [String: Any] else { throw EdgeError(.badRequest, "tenant: must be a JSON object") }
        if let id {
            if let given = fields["id"] as? String, given != id { throw EdgeError(.badRequest, "tenant.id: '\(given)' does not match the path's '\(id)'") }
            fields["id"] = id
        }
        guard let data = try? JSONSerialization.data(withJSONObject: ["tenants": [fields]]),
              let root = try? Yams.compose(yaml: String(decoding: data, as: UTF8.self)) else {
            throw EdgeError(.badRequest, "tenant: not valid JSON")
        }
        var reader = ConfigReader()
        var config = EdgeConfig()
        if let top = reader.mapping(root, "config", allowed: ["tenants"]) { reader.readTenants(top, &config) }
        config.node = .init(id: "origin", region: "origin")
        config.security.masterKeyFile = "unused"
        let problems = reader.problems + (reader.problems.isEmpty ? config.validate().filter { $0.key.hasPrefix("tenants") } : [])
        guard problems.isEmpty, let tenant = config.tenants.first else {
            throw EdgeError(.badRequest, problems.map(\.description).joined(separator: "\n"))
        }
        return tenant
    }
}

extension FileManager {
    func createDirectoryIfNeeded(_ path: String) throws(EdgeError) {
        do { try createDirectory(atPath: path, withIntermediateDirectories: true) } catch { throw EdgeError(.io, "cannot create \(path)") }
    }
}
