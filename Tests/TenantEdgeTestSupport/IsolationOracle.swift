import Foundation
import TenantEdgeCore

/// The isolation property tests' upstream and checker (issue 17): every upstream body names its
/// tenant, path, variant and a version that grows with each fetch, and every response is checked
/// against what the requester may see. Shared by the node-only run and the run under an origin.
package final class IsolationOracle: Sendable {
    package static let paths = (0..<6).map { "/p/\($0)" } + (0..<4).map { "/v/\($0)" }
    package static let languages = ["en", "fr"]

    /// Per tenant, path and variant: the last version fetched.
    private let fetched = Locked<[String: Int]>([:])
    /// Per key, the version a response must exceed: the last version fetched when a purge covering
    /// the key was acknowledged by every node (or the tenant was added again).
    private let floors = Locked<[String: Int]>([:])

    package init() {}

    package static func key(tenant: String, path: String, variant: String) -> String { "\(tenant)|\(path)|\(variant)" }

    /// Bodies name tenant, path, variant and version; `/v/` varies on `Accept-Language`; tags are the
    /// path's group (`g0`–`g2`); the ETag is the version. The tenant is the first label of `Host`.
    package var upstream: TestUpstream.Script {
        { [self] request in
            let tenant = String((request.header("host") ?? "?").prefix { $0 != "." })
            let path = request.uri
            let varies = path.hasPrefix("/v/")
            let variant = varies ? (request.header("accept-language") ?? "-") : "-"
            let key = Self.key(tenant: tenant, path: path, variant: variant)
            let version = fetched.modify {
                $0[key, default: 0] += 1
                return $0[key]!
            }
            var headers = [
                ("Cache-Control", "max-age=300"), ("ETag", "\"\(version)\""),
                ("Surrogate-Key", "g\((Int(path.last.map(String.init) ?? "0") ?? 0) % 3)"),
            ]
            if varies { headers.append(("Vary", "Accept-Language")) }
            return .init(headers: headers, body: "tenant=\(tenant);path=\(path);variant=\(variant);version=\(version)")
        }
    }

    /// After every node acknowledged a purge of `tenant` covering `covered` paths (or the tenant came
    /// back after removal): no answer may be older than what was fetched until now.
    package func raiseFloor(tenant: String, where covered: @escaping @Sendable (String) -> Bool) {
        let current = fetched.value
        floors.modify { floors in
            for path in Self.paths where covered(path) {
                for variant in ["-"] + Self.languages {
                    let key = Self.key(tenant: tenant, path: path, variant: variant)
                    floors[key] = current[key] ?? 0
                }
            }
        }
    }

    /// What is wrong with a `200` body given to `tenant` for `path` in `language`, or nil.
    package func problem(body: String, tenant: String, path: String, language: String) -> String? {
        let variant = path.hasPrefix("/v/") ? language : "-"
        let purgedAt = floors.value[Self.key(tenant: tenant, path: path, variant: variant)] ?? 0
        let fields = Dictionary(
            body.split(separator: ";").compactMap { pair -> (String, String)? in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
            }, uniquingKeysWith: { first, _ in first })
        if fields["tenant"] != tenant { return "served \(fields["tenant"] ?? "?")'s body to \(tenant)" }
        if fields["path"] != path { return "served \(fields["path"] ?? "?") for \(path)" }
        if fields["variant"] != variant { return "served variant \(fields["variant"] ?? "?") for \(variant)" }
        if let version = fields["version"].flatMap(Int.init), version <= purgedAt {
            return "served version \(version), purged when version \(purgedAt) was the last fetched"
        }
        return nil
    }

    /// A purge of one kind for `tenant` (admin API body), and which paths it covers.
    package static func purge(tenant: String, using schedule: inout SeededGenerator) -> (
        body: String, covers: @Sendable (String) -> Bool
    ) {
        switch Int.random(in: 0..<4, using: &schedule) {
        case 0:
            let path = paths.randomElement(using: &schedule)!
            return (#"{"tenant":"\#(tenant)","keys":["\#(path)"]}"#, { $0 == path })
        case 1:
            let group = Int.random(in: 0..<3, using: &schedule)
            return (
                #"{"tenant":"\#(tenant)","tags":["g\#(group)"]}"#,
                { (Int($0.last.map(String.init) ?? "0") ?? 0) % 3 == group }
            )
        case 2:
            let prefix = Bool.random(using: &schedule) ? "/p/" : "/v/"
            return (#"{"tenant":"\#(tenant)","prefixes":["\#(prefix)"]}"#, { $0.hasPrefix(prefix) })
        default:
            return (#"{"tenant":"\#(tenant)","all":true}"#, { _ in true })
        }
    }

    /// Request headers for a GET of the schedule: a language, sometimes a cookie, sometimes a condition.
    package static func headers(tenant: String, roll: Int, using schedule: inout SeededGenerator) -> (
        language: String, headers: [(String, String)]
    ) {
        let language = languages.randomElement(using: &schedule)!
        var headers = [("Accept-Language", language)]
        if roll % 20 < 5 { headers.append(("Cookie", "session=\(tenant)")) }
        if roll % 20 >= 5 && roll % 20 < 10 {
            headers.append(("If-None-Match", "\"\(Int.random(in: 1...3, using: &schedule))\""))
        }
        return (language, headers)
    }

    /// The documented propagation window, made exact: the next operation starts once both nodes of
    /// the region acknowledged the purge (`/_edge/purges/<id>` on the node that took it).
    package static func waitForBothNodes(acknowledging answer: String, on node: EdgeHarness) async throws {
        guard let id = JSONValue.parse(Array(answer.utf8))?.objectValue?["id"]?.stringValue else {
            throw TestEnvironment.Unmet("a purge answer without an id: \(answer)")
        }
        try await waitUntil(seconds: 5) {
            let status = try await node.admin(.GET, "/_edge/purges/\(id)")
            return JSONValue.parse(Array(status.body.utf8))?.objectValue?["nodes"]?.objectValue?.count == 2
        }
    }
}
