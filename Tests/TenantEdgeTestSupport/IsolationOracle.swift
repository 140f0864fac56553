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

    /// What is wrong with a `200` body given to `tenant` for `path` in `language`, or nil. The body
    /// must be exactly what the upstream writes for that tenant, path and variant, with a version.
    package func problem(body: String, tenant: String, path: String, language: String) -> String? {
        let variant = path.hasPrefix("/v/") ? language : "-"
        let expected = "tenant=\(tenant);path=\(path);variant=\(variant);version="
        guard body.hasPrefix(expected), let version = Int(body.dropFirst(expected.count)), version > 0 else {
            return "served \"\(body.prefix(120))\" for \(expected)…"
        }
        let purgedAt = floor(tenant: tenant, path: path, variant: variant)
        if version <= purgedAt {
            return "served version \(version), purged when version \(purgedAt) was the last fetched"
        }
        return nil
    }

    /// What is wrong with a `304` to a conditional request: its ETag names a version a purge covered.
    package func problem(notModifiedETag etag: String?, tenant: String, path: String, language: String) -> String? {
        let variant = path.hasPrefix("/v/") ? language : "-"
        guard let etag, let version = Int(etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"W/"))) else {
            return "a 304 without the stored ETag"
        }
        let purgedAt = floor(tenant: tenant, path: path, variant: variant)
        return version <= purgedAt ? "confirmed version \(version) with a 304 after a purge at \(purgedAt)" : nil
    }

    private func floor(tenant: String, path: String, variant: String) -> Int {
        floors.value[Self.key(tenant: tenant, path: path, variant: variant)] ?? 0
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

    /// Request headers for a GET of the schedule: a language, and for one request in twenty a cookie,
    /// for another one in twenty a condition (an ETag of an early version).
    package static func headers(tenant: String, using schedule: inout SeededGenerator) -> (
        language: String, headers: [(String, String)]
    ) {
        let language = languages.randomElement(using: &schedule)!
        var headers = [("Accept-Language", language)]
        let mix = Int.random(in: 0..<20, using: &schedule)
        if mix == 0 { headers.append(("Cookie", "session=\(tenant)")) }
        if mix == 1 { headers.append(("If-None-Match", "\"\(Int.random(in: 1...3, using: &schedule))\"")) }
        return (language, headers)
    }

    /// The documented propagation window, made exact: the next operation starts once both nodes of
    /// the region acknowledged the purge (`/_edge/purges/<id>` on the node that took it). `clocks`
    /// are moved on while anything sleeps on them: a sibling subscription lost in a Redis stall is
    /// made again after a retry interval on the node's clock.
    package static func waitForBothNodes(
        acknowledging answer: String, on node: EdgeHarness, advancing clocks: ManualCacheClock...
    ) async throws {
        guard try await waitForBothNodesIfPropagated(acknowledging: answer, on: node, advancing: clocks) else {
            throw TestEnvironment.Unmet("the purge did not reach Redis: \(answer)")
        }
    }

    /// `waitForBothNodes`, except that a purge that did not reach Redis (its id's fence is
    /// `PurgeID.notPropagated`: no sibling heard of it, the documented window) returns false at once.
    package static func waitForBothNodesIfPropagated(
        acknowledging answer: String, on node: EdgeHarness, advancing clocks: [ManualCacheClock]
    ) async throws -> Bool {
        guard let id = JSONValue.parse(Array(answer.utf8))?.objectValue?["id"]?.stringValue else {
            throw TestEnvironment.Unmet("a purge answer without an id: \(answer)")
        }
        if PurgeID(Substring(id))?.fence == PurgeID.notPropagated { return false }
        var last = ""
        do {
            try await waitUntil(seconds: 10, advancing: clocks) {
                let status = try await node.admin(.GET, "/_edge/purges/\(id)")
                last = status.body
                return JSONValue.parse(Array(status.body.utf8))?.objectValue?["nodes"]?.objectValue?.count == 2
            }
        } catch {
            throw TestEnvironment.Unmet("\(error); the purge's status read: \(last)")
        }
        return true
    }
}
