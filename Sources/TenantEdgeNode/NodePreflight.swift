import Foundation
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeNative

/// Checks a validated config against the machine: files it names exist and hold what they should.
/// Used by `check-config` and at start, so both report the same problems.
public enum NodePreflight {
    public static func check(_ config: EdgeConfig) throws(EdgeError) {
        var problems: [String] = []
        if config.security.encryption || config.security.masterKeyFile != nil, let path = config.security.masterKeyFile
        {
            do { _ = try StandaloneKeyring.readKeyFile(path, key: "security.master_key_file") } catch {
                problems.append(error.message)
            }
        }
        do { _ = try AdminTokensReader.load(path: config.security.adminTokensFile) } catch {
            problems.append(error.message)
        }
        if let path = config.security.kekFile, !path.isEmpty {
            do { _ = try StandaloneKeyring.readKeyFile(path, key: "security.kek_file") } catch {
                problems.append(error.message)
            }
        }
        // The other files the node reads at start: readable now, so check-config finds what run would.
        let files: [(String, String?)] = [
            ("security.config_public_key", config.security.configPublicKey),
            ("listen.admin_tls.cert_file", config.listen.adminCertFile),
            ("listen.admin_tls.key_file", config.listen.adminKeyFile),
            ("origin.token_file", config.origin?.tokenFile), ("origin.ca_file", config.origin?.caFile),
        ]
        for case (let key, let path?) in files where !path.isEmpty && !FileManager.default.isReadableFile(atPath: path)
        {
            problems.append("\(key): cannot read \(path)")
        }
        if let path = config.geoip.database, !path.isEmpty {
            do { _ = try GeoIPDatabase(path: path) } catch { problems.append("geoip.database: \(error.message)") }
        }
        if !problems.isEmpty { throw EdgeError(.invalidConfig, problems.joined(separator: "\n")) }
    }
}
