import Foundation
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeNode

/// `/metrics` after a scripted mix of traffic: every family present with its labels, no label value
/// taken from request input, and `promtool check metrics` clean.
@Suite("Metrics exposition", .serialized)
struct MetricsExpositionTests {
    static let families: [String: Set<String>] = [
        "edge_requests_total": ["tenant", "cache_status"], "edge_request_duration_seconds": ["tenant", "le"],
        "edge_l2_hits_total": ["tenant"], "edge_cache_bytes": ["tenant", "tier"],
        "edge_cache_quota_bytes": ["tenant", "tier"], "edge_cache_evictions_total": ["tenant"],
        "edge_upstream_duration_seconds": ["tenant", "le"], "edge_upstream_errors_total": ["tenant", "reason"],
        "edge_l2_call_duration_seconds": ["le"], "edge_l2_errors_total": [], "edge_l2_connection_waits_total": [],
        "edge_purge_acknowledgements_unwritten": [], "edge_sibling_purge_subscriptions_down": [],
        "edge_security_events_total": ["kind"], "edge_invalidations_applied_total": ["kind"],
        "edge_invalidation_lag_seconds": [], "edge_invalidation_lag_bound_seconds": [], "edge_feed_cursor": [],
        "edge_feed_reconnects_total": [],
        "edge_config_version": [], "edge_config_bundles_total": ["result"], "edge_tier_up": ["tier"],
        "edge_geo_decisions_total": ["source"], "edge_geoip_lookup_errors_total": [],
        "edge_geoip_reloads_total": ["result"], "edge_secret_file_readable": ["file"],
    ]

    /// Label values the node may put out: config tenants, and the code's own constants.
    static let allowedValues: Set<String> = [
        "acme", "globex", "_unknown", "hit", "stale", "miss", "revalidated", "bypass", "error", "memory", "redis",
        "connect", "timeout", "status_5xx", "invalid_response", "key", "tag", "prefix", "all", "applied",
        "bad_signature", "stale_version", "invalid", "cache", "lookup", "ok", "failed", "admin_tokens", "master_key",
        "auth_failed", "decrypt_failed", "stale_config_version", "residency_bypass", "unknown_tenant",
        "forwarded_for_untrusted",
    ]

    @Test func aMixOfTrafficGivesEveryFamilyNoRequestTextAndAPromtoolCleanExposition() async throws {
        try await SharedTierTests.withTwoNodes(database: 23) { a, b, _ in
            let hostile = #"x"},evil{a="1"#
            _ = try await a.get("/m/1")
            _ = try await a.get("/m/1")
            for _ in 0..<20 where try await b.get("/m/1").cacheStatus.contains("detail=l2") == false {
                try await Task.sleep(for: .milliseconds(50))
            }
            _ = try await a.get("/m/2", host: "api.globex.test", headers: [("X-Request-Id", hostile)])
            _ = try await a.get("/\(hostile)", host: "evil-\(UUID().uuidString).example")
            _ = try await a.get("/m/3", headers: [("Cookie", hostile), ("Cache-Control", hostile)])
            _ = try await a.admin(.GET, "/_edge/stats", token: hostile)
            _ = try await a.admin(.POST, "/_edge/purge", body: #"{"tenant":"acme","keys":["/m/1"]}"#)
            _ = try await a.admin(.PUT, "/_edge/config", body: "not a bundle")
            for node in [a, b] {
                let scraped = try await node.admin(.GET, "/metrics", token: EdgeHarness.adminToken)
                #expect(scraped.status == 200)
                try await Self.check(scraped.body, node: node.runtime.config.node.id)
            }
            let text = try await a.admin(.GET, "/metrics", token: EdgeHarness.adminToken).body
            #expect(text.contains(#"edge_l2_hits_total{tenant="acme"} "#))
            #expect(text.contains(#"edge_security_events_total{kind="auth_failed"} 1"#))
            #expect(text.contains(#"edge_security_events_total{kind="unknown_tenant"} 1"#))
            #expect(text.contains(#"edge_config_bundles_total{result="invalid"} 1"#))
            #expect(text.contains(#"edge_upstream_duration_seconds_count{tenant="acme"} "#))
            try await Self.checkRulesAndBoard(against: text)
            let l2Hits = try await b.admin(.GET, "/metrics", token: EdgeHarness.adminToken).body
            #expect(l2Hits.contains(#"edge_l2_hits_total{tenant="acme"} 1"#), "b answered /m/1 from Redis")
        }
    }

    /// The repository's root, from this file's path.
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// `deploy/prometheus` rules pass `promtool check rules` and their unit tests; the rules and the
    /// Grafana board name only metrics this node exports (`scripts/check-grafana-metrics.py`).
    static func checkRulesAndBoard(against exposition: String) async throws {
        let rules = repository.appendingPathComponent("deploy/prometheus/tenantedge-alerts.yml").path
        let tests = repository.appendingPathComponent("deploy/prometheus/tenantedge-alerts.test.yml").path
        let board = repository.appendingPathComponent("deploy/grafana/tenantedge-fleet.json").path
        let checked = try await Promtool.run(["check", "rules", rules])
        #expect(checked.status == 0, "promtool check rules: \(checked.output)")
        let tested = try await Promtool.run(["test", "rules", tests])
        #expect(tested.status == 0 && tested.output.contains("SUCCESS"), "promtool test rules: \(tested.output)")
        let scrape = FileManager.default.temporaryDirectory.appendingPathComponent("te-scrape-\(UUID().uuidString)")
        try Data(exposition.utf8).write(to: scrape)
        defer { try? FileManager.default.removeItem(at: scrape) }
        let checker = try await ChildProcess.run(
            "/usr/bin/env",
            [
                "python3", repository.appendingPathComponent("scripts/check-grafana-metrics.py").path, board, rules,
                scrape.path,
            ])
        #expect(checker.status == 0, "check-grafana-metrics: \(checker.output)")
    }

    /// The families, their label names, the label values, and promtool's verdict.
    static func check(_ text: String, node: String) async throws {
        var seen: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { base, suffix in
                base.hasSuffix(suffix) && families[String(base.dropLast(suffix.count))] != nil
                    ? String(base.dropLast(suffix.count)) : base
            }
            var labels = Set<String>()
            if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
                for pair in line[line.index(after: open)..<close].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    let key = String(parts[0])
                    let value = String(parts.count > 1 ? parts[1] : "").trimmingCharacters(in: ["\""])
                    labels.insert(key)
                    if key != "le" && key != "region" && !allowedValues.contains(value) {
                        Issue.record("\(node): label \(key)=\(value) is not from the config or the code: \(line)")
                    }
                }
            }
            seen[family, default: []].formUnion(labels)
        }
        for (family, labels) in families {
            #expect(seen[family] != nil, "\(node): \(family) is missing")
            if let found = seen[family] { #expect(found == labels, "\(node): \(family) labels \(found)") }
        }
        #expect(!text.contains("evil"), "no request text in any label or name")
        let verdict = try await Promtool.run(["check", "metrics"], input: text)
        #expect(verdict.status == 0 && verdict.output.isEmpty, "\(node): promtool: \(verdict.output)")
    }
}
