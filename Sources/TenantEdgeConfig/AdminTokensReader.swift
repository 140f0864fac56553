import Foundation
import TenantEdgeCore
import Yams

/// Reads the admin tokens file: `- {sha256: <hex>, scopes: [purge, config, read, admin], tenants: ["*"]}`.
/// Only digests are in the file; a token itself is never stored or logged.
package enum AdminTokensReader {
    package static func load(path: String?) throws(EdgeError) -> AdminTokens {
        guard let path, !path.isEmpty else { return AdminTokens([]) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "security.admin_tokens_file: cannot read '\(path)'")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: "security.admin_tokens_file")
    }

    package static func parse(_ yaml: String, source: String) throws(EdgeError) -> AdminTokens {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw EdgeError(.invalidConfig, "\(source): is not valid YAML")
        }
        guard let root else { return AdminTokens([]) }
        guard case .sequence(let items) = root else {
            throw EdgeError(.invalidConfig, "\(source): must be a list of tokens")
        }
        var tokens: [AdminTokens.Token] = []
        for (index, item) in items.enumerated() {
            let key = "\(source)[\(index)]"
            guard let hex = item["sha256"]?.string, let digest = Hex.decode(hex), digest.count == 32 else {
                throw EdgeError(.invalidConfig, "\(key).sha256: must be 64 hex characters (the SHA-256 of the token)")
            }
            var scopes = Set<AdminTokens.Scope>()
            for scope in item["scopes"]?.array() ?? [] {
                guard let name = scope.string, let value = AdminTokens.Scope(rawValue: name) else {
                    throw EdgeError(.invalidConfig, "\(key).scopes: must be from purge, config, read, admin")
                }
                scopes.insert(value)
            }
            if scopes.isEmpty { throw EdgeError(.invalidConfig, "\(key).scopes: must list at least one scope") }
            let tenants = (item["tenants"]?.array() ?? []).compactMap(\.string)
            if tenants.isEmpty { throw EdgeError(.invalidConfig, "\(key).tenants: must list tenant ids or \"*\"") }
            tokens.append(AdminTokens.Token(sha256: digest, scopes: scopes, tenants: tenants))
        }
        return AdminTokens(tokens)
    }
}
