import Foundation
import TenantEdgeConfig
import TenantEdgeCore
import Yams

/// The registry's documents: sealed keys and the registry file as `Codable` types, tenants and
/// regions as bundles carry them, and a tenant read back with the node file's rules.
extension TenantRegistry {
    /// A tenant data key as the origin keeps it: only sealed, once per region that has a KEK.
    struct StoredKey: Codable, Sendable {
        var version: UInt32
        var createdAt: String
        var wrapped: [String: [UInt8]]

        enum CodingKeys: String, CodingKey {
            case version, wrapped
            case createdAt = "created_at"
        }

        init(version: UInt32, createdAt: String, wrapped: [String: [UInt8]]) {
            self.version = version
            self.createdAt = createdAt
            self.wrapped = wrapped
        }

        /// Sealed keys in base64 per region; a value that is not base64 makes the file unreadable.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            version = try container.decode(UInt32.self, forKey: .version)
            createdAt = try container.decodeIfPresent(String.self, forKey: .createdAt) ?? ""
            var wrapped: [String: [UInt8]] = [:]
            for (region, text) in try container.decode([String: String].self, forKey: .wrapped) {
                guard let bytes = Data(base64Encoded: text) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .wrapped, in: container, debugDescription: "not base64")
                }
                wrapped[region] = Array(bytes)
            }
            self.wrapped = wrapped
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(version, forKey: .version)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(wrapped.mapValues { Data($0).base64EncodedString() }, forKey: .wrapped)
        }
    }

    /// `registry.json`: tenants as in bundles (read back with the node file's rules), sealed keys.
    struct RegistryFile: Codable {
        var version: Int
        var tenants: [JSONValue]
        var keys: [String: [StoredKey]]?
        var namingKeys: [String: [String: String]]?
        /// Counts every stored change, so a copy in memory never goes back to an older one.
        var revision: Int?

        enum CodingKeys: String, CodingKey {
            case version, tenants, keys, revision
            case namingKeys = "naming_keys"
        }
    }

    /// A tenant as in bundles and the registry file (the node file's field names).
    static func json(_ tenant: TenantConfig) -> [String: JSONValue] {
        var object: [String: JSONValue] = [
            "id": .string(tenant.id), "hosts": .array(tenant.hosts.map { .string($0) }),
            "upstream": .string(tenant.upstream),
            "residency": .array(tenant.residency.map { .string($0) }), "geo_mode": .string(tenant.geoMode.rawValue),
        ]
        if let quota = tenant.quotaBytes { object["quota_bytes"] = .integer(quota) }
        if let ttl = tenant.defaultTTLSeconds { object["default_ttl_s"] = .integer(ttl) }
        if let isolation = tenant.isolation { object["isolation"] = .string(isolation.rawValue) }
        if let url = tenant.redisURL { object["redis_url"] = .string(url) }
        if !tenant.normalizePath { object["normalize_path"] = .bool(false) }
        if let quota = tenant.quotaBytesL2 { object["quota_bytes_l2"] = .integer(quota) }
        if tenant.shareCookieRequests { object["share_cookie_requests"] = .bool(true) }
        if tenant.serverTiming { object["server_timing"] = .bool(true) }
        if tenant.accessLogSample > 0 { object["access_log_sample"] = .number(tenant.accessLogSample) }
        return object
    }

    /// A region as in bundles.
    static func json(_ region: RegionConfig) -> JSONValue {
        .object([
            "name": .string(region.name), "lat": .number(region.lat), "lon": .number(region.lon),
            "public_url": .string(region.publicURL), "down": .bool(region.down),
            "countries": .array(region.countries.map { .string($0) }),
        ])
    }

    /// Reads one tenant with the node file's rules (every problem named), and checks it alone.
    static func tenant(from object: JSONValue, id: String?) throws(EdgeError) -> TenantConfig {
        guard var fields = object.objectValue else { throw EdgeError(.badRequest, "tenant: must be a JSON object") }
        if let id {
            if let given = fields["id"], given != .string(id) {
                throw EdgeError(
                    .badRequest, "tenant.id: '\(given.stringValue ?? "?")' does not match the path's '\(id)'")
            }
            fields["id"] = .string(id)
        }
        // JSON is YAML: the node file's reader checks the tenant, naming every problem.
        guard let text = try? JSONValue.object(["tenants": .array([.object(fields)])]).canonicalText,
            let root = try? Yams.compose(yaml: text)
        else {
            throw EdgeError(.badRequest, "tenant: not valid JSON")
        }
        var reader = ConfigReader()
        var config = EdgeConfig()
        if let top = reader.mapping(root, "config", allowed: ["tenants"]) { reader.readTenants(top, &config) }
        config.node = .init(id: "origin", region: "origin")
        config.security.masterKeyFile = "unused"
        let problems =
            reader.problems + (reader.problems.isEmpty ? config.validate().filter { $0.key.hasPrefix("tenants") } : [])
        guard problems.isEmpty, let tenant = config.tenants.first else {
            throw EdgeError(.badRequest, problems.map(\.description).joined(separator: "\n"))
        }
        return tenant
    }
}
