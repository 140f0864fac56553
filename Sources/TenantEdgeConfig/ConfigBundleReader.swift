import Foundation
import TenantEdgeCore
import Yams

/// A config bundle from the origin: `{"version","issued_at","regions",
/// "tenants"}`. Its body is checked against the pinned Ed25519 key before anything parses it
/// (`ConfigBundleGate`); then it is read here with the same strict rules as a node file's
/// `regions` and `tenants` (JSON is YAML, so one reader serves both), and every problem is named.
public struct ConfigBundle: Sendable {
    public var version: Int
    public var issuedAt: String
    public var regions: [RegionConfig]
    public var tenants: [TenantConfig]

    /// Parses and validates the bundle as the tenant set of `base` (the node's own file). Throws
    /// `.badRequest` listing every problem, one per line, naming the field.
    public static func read(_ body: [UInt8], base: EdgeConfig) throws(EdgeError) -> (ConfigBundle, EdgeConfig) {
        guard let text = String(validating: body, as: UTF8.self) else {
            throw EdgeError(.badRequest, "bundle: not UTF-8 text")
        }
        guard JSONValue.parse(body)?.objectValue != nil else {
            throw EdgeError(.badRequest, "bundle: not a JSON object")
        }
        var reader = ConfigReader()
        var config = base
        config.regions = []
        config.tenants = []
        var version = 0
        var issuedAt = ""
        if let root = try? Yams.compose(yaml: text),
            let top = reader.mapping(root, "bundle", allowed: ["version", "issued_at", "regions", "tenants"])
        {
            for required in ["version", "issued_at", "tenants"] where top[required] == nil {
                reader.problems.append(ConfigProblem("bundle.\(required)", "is required"))
            }
            reader.integer(top, "version", "bundle") { version = $0 }
            reader.string(top, "issued_at", "bundle") { issuedAt = $0 }
            reader.readRegions(top, &config)
            reader.readTenants(top, &config, inBundle: true)
        } else {
            reader.problems.append(ConfigProblem("bundle", "is not a JSON object"))
        }
        if reader.problems.isEmpty && version < 1 {
            reader.problems.append(ConfigProblem("bundle.version", "must be 1 or more"))
        }
        let problems = reader.problems + (reader.problems.isEmpty ? config.validate() : [])
        guard problems.isEmpty else {
            throw EdgeError(.badRequest, problems.map(\.description).joined(separator: "\n"))
        }
        return (
            ConfigBundle(version: version, issuedAt: issuedAt, regions: config.regions, tenants: config.tenants), config
        )
    }
}
