import ArgumentParser
import Foundation
import TenantEdgeCore
import TenantEdgeNative

/// Where and as whom `edgectl` talks to the origin.
struct OriginOptions: ParsableArguments {
    @Option(name: .long, help: "The origin's base URL (https://…).")
    var origin: String

    @Option(name: .customLong("token-file"), help: "File holding the bearer token (admin or publisher).")
    var tokenFile: String

    @Option(name: .customLong("ca-file"), help: "CA certificate (PEM) that the origin's certificate must chain to.")
    var caFile: String?

    /// Calls the origin; prints the JSON answer and exits 0 on 2xx, prints the reason on stderr and
    /// exits 1 otherwise. The token is never printed.
    func call(_ method: String, _ path: String, body: [UInt8]? = nil) throws {
        print(try fetch(method, path, body: body))
    }

    /// The answer's body on 2xx; otherwise the reason on stderr and exit 1.
    func fetch(_ method: String, _ path: String, body: [UInt8]? = nil) throws -> String {
        var text = ""
        try EdgectlCommand.reportingErrors {
            guard origin.hasPrefix("https://") else {
                throw EdgeError(.invalidConfig, "--origin: must start with https://")
            }
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw EdgeError(.io, "--token-file: cannot read \(tokenFile)")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let response = try CurlClient().request(
                method, origin + path, body: body, caFile: caFile,
                headers: ["Authorization: Bearer \(token)", "Content-Type: application/json"],
                timeoutMs: 30_000)
            text = String(decoding: response.body, as: UTF8.self)
            guard (200..<300).contains(response.status) else {
                FileHandle.standardError.write(Data("origin answered \(response.status): \(text)\n".utf8))
                throw ExitCode(1)
            }
        }
        return text
    }
}

extension EdgectlCommand {
    /// `edgectl purge --tenant T [--key K …] [--tag T …] [--prefix P …] [--all]`: publishes an
    /// invalidation at the origin; every node of every region applies it.
    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a purge at the origin.")
        @OptionGroup var target: OriginOptions
        @Option(name: .long, help: "The tenant.") var tenant: String
        @Option(name: .long, help: "A request target to purge (path and query); repeat for more.") var key: [String] =
            []
        @Option(name: .long, help: "A Surrogate-Key tag; repeat for more.") var tag: [String] = []
        @Option(name: .long, help: "A path prefix; repeat for more.") var prefix: [String] = []
        @Flag(name: .long, help: "Everything of the tenant.") var all = false

        func run() throws {
            let body = JSONValue.object([
                "tenant": .string(tenant), "keys": .array(key.map { .string($0) }),
                "tags": .array(tag.map { .string($0) }),
                "prefixes": .array(prefix.map { .string($0) }), "all": .bool(all),
            ])
            try target.call("POST", "/v1/invalidations", body: Array(try body.canonicalText.utf8))
        }
    }

    struct Tenant: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tenants in the origin's registry.", subcommands: [Put.self, Erase.self])

        /// `edgectl tenant put --id T --file F`: adds or changes a tenant (JSON with the fields of a node
        /// file's tenant).
        struct Put: ParsableCommand {
            @OptionGroup var target: OriginOptions
            @Option(name: .long, help: "The tenant id.") var id: String
            @Option(name: .long, help: "The tenant as JSON.") var file: String
            func run() throws {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("--file: cannot read \(file)\n".utf8))
                    throw ExitCode(2)
                }
                try target.call("PUT", "/v1/tenants/\(id)", body: Array(data))
            }
        }

        /// `edgectl tenant erase T`: removes the tenant, has every node drop its data now, and
        /// publishes the bundle without it (so nodes forget its keys), unless `--no-publish`.
        struct Erase: ParsableCommand {
            @OptionGroup var target: OriginOptions
            @Argument(help: "The tenant id.") var id: String
            @Flag(name: .customLong("no-publish"), help: "Leave the bundle for a later publish.") var noPublish = false
            func run() throws {
                try target.call("DELETE", "/v1/tenants/\(id)")
                if !noPublish { try target.call("POST", "/v1/config/publish") }
            }
        }
    }
}

extension EdgectlCommand {
    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tenant data keys at the origin.", subcommands: [Rotate.self, Retire.self])

        /// `edgectl key rotate --tenant T`: a new key version, published at once unless `--no-publish`.
        struct Rotate: ParsableCommand {
            @OptionGroup var target: OriginOptions
            @Option(name: .long, help: "The tenant.") var tenant: String
            @Flag(name: .customLong("no-publish"), help: "Leave the bundle for a later publish.") var noPublish = false
            func run() throws {
                try target.call("POST", "/v1/tenants/\(tenant)/keys/rotate")
                if !noPublish { try target.call("POST", "/v1/config/publish") }
            }
        }

        /// `edgectl key retire --tenant T --version V`: crypto-shreds a key version at the next publish.
        struct Retire: ParsableCommand {
            @OptionGroup var target: OriginOptions
            @Option(name: .long, help: "The tenant.") var tenant: String
            @Option(name: .long, help: "The key version to retire.") var version: UInt32
            @Flag(name: .customLong("no-publish"), help: "Leave the bundle for a later publish.") var noPublish = false
            func run() throws {
                try target.call("DELETE", "/v1/tenants/\(tenant)/keys/\(version)")
                if !noPublish { try target.call("POST", "/v1/config/publish") }
            }
        }
    }
}

extension EdgectlCommand {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reports.", subcommands: [Compliance.self])

        /// `edgectl report compliance`: per tenant encryption, key versions and ages, residency,
        /// last purge; erasures and their confirmations; whether the audit chain verifies.
        struct Compliance: ParsableCommand {
            @OptionGroup var target: OriginOptions
            @Flag(name: .long, help: "Print the JSON instead of a table.") var json = false

            func run() throws {
                let text = try target.fetch("GET", "/v1/report/compliance")
                if json { return print(text) }
                guard let report = try? JSONDecoder().decode(ComplianceReport.self, from: Data(text.utf8)) else {
                    return print(text)
                }
                print(Self.table(report))
            }

            static func table(_ report: ComplianceReport) -> String {
                var rows = [["tenant", "encrypted", "keys (age in days)", "residency", "last purge"]]
                for tenant in report.tenants {
                    let keys = tenant.keyVersions.map { "v\($0.version) (\($0.ageDays)d)" }
                    let purge = tenant.lastPurge.map { "#\($0.seq) \($0.publishedAt)" } ?? "-"
                    let residency = tenant.residency.joined(separator: ",")
                    rows.append([
                        tenant.id, tenant.encrypted ? "yes" : "NO", keys.joined(separator: ", "),
                        residency.isEmpty ? "any" : residency, purge,
                    ])
                }
                let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
                var lines = rows.map { row in
                    row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                        separator: "  ")
                }
                for erasure in report.erasures {
                    let confirmed = erasure.confirmed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                    lines.append(
                        "erased \(erasure.tenant ?? "?") at \(erasure.requestedAt) by \(erasure.requestedBy); "
                            + "confirmed: \(confirmed.isEmpty ? "none yet" : confirmed.joined(separator: ", "))")
                }
                let chain = report.auditChain
                lines.append(
                    chain.valid
                        ? "audit chain: verifies (\(chain.entries ?? 0) entries)"
                        : "audit chain: BROKEN at line \(chain.line ?? 0): \(chain.reason ?? "")")
                return lines.joined(separator: "\n")
            }
        }
    }
}

extension EdgectlCommand.Config {
    /// `edgectl config publish`: the origin builds, signs and pushes the next bundle.
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build, sign and push the next bundle at the origin.")
        @OptionGroup var target: OriginOptions
        func run() throws { try target.call("POST", "/v1/config/publish") }
    }
}
