import Foundation
import TenantEdgeCore
import Yams

/// Reads `OriginConfig` from YAML (docs/origin.md) with the node reader's strict rules: unknown
/// keys, wrong types and invalid values are each named. Relative paths resolve against the file.
public enum OriginConfigReader {
    public static func load(path: String) throws(EdgeError) -> OriginConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "config: cannot read '\(path)'")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var reader = ConfigReader()
        var config = OriginConfig()
        guard let root = try? Yams.compose(yaml: String(decoding: data, as: UTF8.self)),
            let top = reader.mapping(
                root, "config",
                allowed: [
                    "listen", "tls", "state_dir", "storage", "signing_key_file", "log_retention_events", "tokens",
                    "tokens_file", "regions", "tenants", "logging",
                ])
        else {
            throw EdgeError(.invalidConfig, reader.problems.first?.description ?? "config: is not a YAML mapping")
        }
        reader.string(top, "listen", nil) { config.listen = $0 }
        reader.readLogging(top) { config.logging = $0 }
        if let tls = reader.mapping(top["tls"], "tls", allowed: ["cert_file", "key_file", "node_ca_file"]) {
            reader.string(tls, "cert_file", "tls") { config.certFile = ConfigReader.resolve($0, base) }
            reader.string(tls, "key_file", "tls") { config.keyFile = ConfigReader.resolve($0, base) }
            reader.string(tls, "node_ca_file", "tls") { config.nodeCAFile = ConfigReader.resolve($0, base) }
        }
        reader.string(top, "state_dir", nil) { config.stateDir = ConfigReader.resolve($0, base) }
        reader.string(top, "signing_key_file", nil) { config.signingKeyFile = ConfigReader.resolve($0, base) }
        if let storage = reader.mapping(top["storage"], "storage", allowed: ["postgres"]),
            let postgres = reader.mapping(
                storage["postgres"], "storage.postgres", allowed: ["url", "pool_size", "tls", "ca_file"])
        {
            var section = OriginStorage.Postgres(url: "")
            reader.string(postgres, "url", "storage.postgres") { section.url = $0 }
            reader.integer(postgres, "pool_size", "storage.postgres") { section.poolSize = $0 }
            var tls: String? = nil
            reader.string(postgres, "tls", "storage.postgres") { tls = $0 }
            if let tls {
                if let mode = OriginStorage.TLSMode(rawValue: tls) {
                    section.tls = mode
                } else {
                    reader.problems.append(ConfigProblem("storage.postgres.tls", "must be disable, require or verify"))
                }
            }
            reader.string(postgres, "ca_file", "storage.postgres") { section.caFile = ConfigReader.resolve($0, base) }
            config.storage = .postgres(section)
        }
        reader.integer(top, "log_retention_events", nil) { config.logRetentionEvents = $0 }
        readTokens(top, &config, &reader)
        // `tokens_file`: the same `tokens` mapping kept in a file of its own (generated with the secrets).
        var tokensFile: String? = nil
        reader.string(top, "tokens_file", nil) { tokensFile = ConfigReader.resolve($0, base) }
        if let file = tokensFile {
            if let data = FileManager.default.contents(atPath: file),
                let node = try? Yams.compose(yaml: String(decoding: data, as: UTF8.self))
            {
                readTokens(["tokens": node], &config, &reader)
            } else {
                reader.problems.append(ConfigProblem("tokens_file", "cannot read \(file) as YAML"))
            }
        }
        for (index, item) in reader.sequence(top["regions"], "regions").enumerated() {
            let path = "regions[\(index)]"
            guard
                let fields = reader.mapping(
                    item, path, allowed: ["name", "lat", "lon", "public_url", "down", "countries", "kek_file", "nodes"])
            else { continue }
            var region = OriginConfig.Region(region: RegionConfig(name: "", lat: 0, lon: 0, publicURL: ""))
            reader.string(fields, "name", path) { region.region.name = $0 }
            reader.number(fields, "lat", path) { region.region.lat = $0 }
            reader.number(fields, "lon", path) { region.region.lon = $0 }
            reader.string(fields, "public_url", path) { region.region.publicURL = $0 }
            reader.boolean(fields, "down", path) { region.region.down = $0 }
            reader.strings(fields, "countries", path) { region.region.countries = $0 }
            reader.string(fields, "kek_file", path) { region.kekFile = ConfigReader.resolve($0, base) }
            for (nodeIndex, nodeItem) in reader.sequence(fields["nodes"], "\(path).nodes").enumerated() {
                let nodePath = "\(path).nodes[\(nodeIndex)]"
                guard let node = reader.mapping(nodeItem, nodePath, allowed: ["id", "admin_url", "admin_token_file"])
                else { continue }
                var value = OriginConfig.Node(id: "", adminURL: "", adminTokenFile: "")
                reader.string(node, "id", nodePath) { value.id = $0 }
                reader.string(node, "admin_url", nodePath) { value.adminURL = $0 }
                reader.string(node, "admin_token_file", nodePath) {
                    value.adminTokenFile = ConfigReader.resolve($0, base)
                }
                region.nodes.append(value)
            }
            config.regions.append(region)
        }
        var tenants = EdgeConfig()
        reader.readTenants(top, &tenants, inBundle: false)
        config.tenants = tenants.tenants
        let problems = reader.problems + (reader.problems.isEmpty ? config.validate() : [])
        guard problems.isEmpty else {
            throw EdgeError(.invalidConfig, problems.map(\.description).joined(separator: "\n"))
        }
        return config
    }

    private static func readTokens(_ top: [String: Node], _ config: inout OriginConfig, _ reader: inout ConfigReader) {
        guard let tokens = reader.mapping(top["tokens"], "tokens", allowed: ["admin", "publishers", "nodes"]) else {
            return
        }
        func digest(_ fields: [String: Node], _ path: String, _ reader: inout ConfigReader) -> [UInt8]? {
            var value: [UInt8]? = nil
            reader.string(fields, "sha256", path) { text in
                value = Hex.decode(text).flatMap { $0.count == 32 ? $0 : nil }
            }
            if value == nil {
                reader.problems.append(ConfigProblem("\(path).sha256", "must be 64 hex digits (SHA-256 of the token)"))
            }
            return value
        }
        for (index, item) in reader.sequence(tokens["admin"], "tokens.admin").enumerated() {
            guard let fields = reader.mapping(item, "tokens.admin[\(index)]", allowed: ["sha256"]),
                let sha = digest(fields, "tokens.admin[\(index)]", &reader)
            else { continue }
            config.tokens.admin.append(sha)
        }
        for (index, item) in reader.sequence(tokens["publishers"], "tokens.publishers").enumerated() {
            let path = "tokens.publishers[\(index)]"
            guard let fields = reader.mapping(item, path, allowed: ["sha256", "tenants"]),
                let sha = digest(fields, path, &reader)
            else { continue }
            // No default: a publisher entry that forgot `tenants` must not silently publish for all.
            var tenants: [String] = []
            reader.strings(fields, "tenants", path) { tenants = $0 }
            if tenants.isEmpty {
                reader.problems.append(
                    ConfigProblem("\(path).tenants", "is required: list the tenants it may publish for, or [\"*\"]"))
            }
            config.tokens.publishers.append((sha, tenants))
        }
        for (index, item) in reader.sequence(tokens["nodes"], "tokens.nodes").enumerated() {
            let path = "tokens.nodes[\(index)]"
            guard let fields = reader.mapping(item, path, allowed: ["sha256", "region", "node"]),
                let sha = digest(fields, path, &reader)
            else { continue }
            var region = ""
            var node: String? = nil
            reader.string(fields, "region", path) { region = $0 }
            reader.string(fields, "node", path) { node = $0 }
            if region.isEmpty {
                reader.problems.append(
                    ConfigProblem("\(path).region", "is required: a node token is bound to one region"))
            }
            config.tokens.nodes.append((sha, region, node))
        }
    }
}
