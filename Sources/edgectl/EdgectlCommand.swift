import ArgumentParser
import Foundation
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeNative

/// `edgectl`: the operator CLI. So far: `redis acl`, `audit verify`, `keygen`, `config sign`; the commands that
/// drive the origin (publish, purge, keys, tenants) arrive with it.
@main
struct EdgectlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgectl", abstract: "TenantEdge operator CLI.",
        subcommands: [Redis.self, Audit.self, Keygen.self, Config.self, Purge.self, Tenant.self, Key.self, Report.self])

    /// Runs `body`; an `EdgeError` becomes one line on stderr and exit code 2.
    static func reportingErrors(_ body: () throws -> Void) throws {
        do { try body() } catch let error as EdgeError {
            FileHandle.standardError.write(Data((error.message + "\n").utf8))
            throw ExitCode(2)
        }
    }

    struct Redis: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Redis (L2) helpers.", subcommands: [ACL.self])
    }

    struct ACL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "acl",
            abstract: "Print the ACL SETUSER lines for every tenant on the schema strategy (pipe into redis-cli).")

        @Option(name: .long, help: "The node's YAML config.")
        var config: String

        func run() throws {
            try EdgectlCommand.reportingErrors {
                let config = try ConfigReader.load(path: config)
                guard config.cache.redis != nil else {
                    throw EdgeError(.invalidConfig, "cache.redis: not configured in this file")
                }
                let tenants = config.tenants.filter { config.isolation(of: $0) == .schema }
                guard !tenants.isEmpty else { return }
                guard let path = config.security.masterKeyFile else {
                    throw EdgeError(.invalidConfig, "security.master_key_file: needed to derive the ACL passwords")
                }
                let masterKey = try StandaloneKeyring.readKeyFile(path, key: "security.master_key_file")
                for tenant in tenants {
                    let password = try StandaloneKeyring.redisACLPassword(masterKey: masterKey, tenant: tenant.id)
                    print(RedisACL.setUserLine(tenant: tenant.id, password: password))
                }
            }
        }
    }
}
