import Foundation
import Prometheus
import Synchronization
import TenantEdgeCore

/// The node's Prometheus metrics (`GET /metrics` on the admin listener), through swift-prometheus.
/// Nothing on the hit path touches the registry: requests are counted and timed per tenant and
/// worker lane (`TenantCounters`), and a scrape adds what was counted since the last one to the
/// registry's counters and renders the lane histograms. Gauges that mirror state (occupancy, the
/// feed, tiers) are brought up to date at the scrape too (`EdgeMetrics+Scrape`).
///
/// Label values come from the config (tenant ids, regions) or from the code's own constants, never
/// from a request, so the number of series is bounded by the config.
final class EdgeMetrics: Sendable {
    static let invalidationKinds = ["key", "tag", "prefix", "all"]
    static let bundleResults = ["applied", "bad_signature", "stale_version", "invalid"]

    static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    static var requestsTotal: MetricNameDescriptor {
        describe("edge_requests_total", "Tenant requests by cache outcome")
    }

    let registry: PrometheusCollectorRegistry
    /// What each counter-like figure was when last added to the registry, by series key, so a scrape
    /// adds only the difference (two scrapes at once never add the same events twice).
    let reported = Mutex<[String: Int]>([:])
    /// Per tenant, the `TenantCounters` last reported (held, so a rebuilt cache's new counters can
    /// never take the old one's address and be mistaken for it): new counters start from 0.
    let reportedCounters = Mutex<[String: TenantCounters]>([:])
    /// One scrape at a time: two at once (Prometheus in pairs) across a tenant-set swap would each
    /// take the other's counters for new ones and add the same requests twice.
    let scraping = Mutex(())
    /// Requests answered before any tenant was known (`tenant="_unknown"`).
    let unknownTenantDuration = LaneHistogram(
        boundsNanoseconds: TenantCounters.durationBoundsSeconds.map { Int64($0 * 1e9) })
    private let unknownTenantRequests: Counter
    private let securityEvents: [String: Counter]
    private let invalidations: [String: Counter]
    private let bundles: [String: Counter]

    init(registry: PrometheusCollectorRegistry, tenants: [String]) {
        self.registry = registry
        unknownTenantRequests = registry.makeCounter(
            descriptor: Self.requestsTotal, labels: [("tenant", "_unknown"), ("cache_status", "bypass")])
        func family(_ name: String, _ help: String, label: String, values: [String]) -> [String: Counter] {
            Dictionary(
                uniqueKeysWithValues: values.map {
                    ($0, registry.makeCounter(descriptor: Self.describe(name, help), labels: [(label, $0)]))
                })
        }
        securityEvents = family(
            "edge_security_events_total", "Security events by kind (each counted; the audit log aggregates)",
            label: "kind", values: SecurityEvents.kinds)
        invalidations = family(
            "edge_invalidations_applied_total", "Purge selectors applied, by kind", label: "kind",
            values: Self.invalidationKinds)
        bundles = family(
            "edge_config_bundles_total", "Config bundles pushed or pulled, by result", label: "result",
            values: Self.bundleResults)
        registerTenants(tenants)
    }

    /// Series for tenants a bundle added, so they show at 0 before their first request.
    func registerTenants(_ tenants: [String]) {
        for tenant in tenants { _ = requestCounters(tenant: tenant) }
    }

    /// `edge_requests_total` of one tenant, by outcome (the registry hands out the same counters again).
    func requestCounters(tenant: String) -> [Counter] {
        TenantCounters.Kind.allCases.map {
            registry.makeCounter(
                descriptor: Self.requestsTotal, labels: [("tenant", tenant), ("cache_status", $0.label)])
        }
    }

    /// A request answered before any tenant was known.
    func recordUnknownTenantRequest(elapsedNanoseconds: Int64) {
        unknownTenantRequests.increment()
        unknownTenantDuration.record(nanoseconds: elapsedNanoseconds)
    }

    func recordSecurityEvent(_ kind: String) { securityEvents[kind]?.increment() }

    func recordBundle(result: String) { (bundles[result] ?? bundles["invalid"])?.increment() }

    func recordInvalidation(_ kind: String, count: Int = 1) {
        if count > 0 { invalidations[kind]?.increment(by: Int64(count)) }
    }

    /// Adds `total - last reported` to the counter `name{labels}` (made on first use). A total
    /// below the last reported means its source started again (a rebuilt cache, a removed Redis
    /// tier): all of it is new, and it is the new base. Scrapes run one at a time (`render`).
    func advance(_ name: String, _ help: String, labels: [(String, String)], to total: Int) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = reported.withLock { reported -> Int in
            let last = reported[key] ?? 0
            reported[key] = total
            return total >= last ? total - last : total
        }
        let counter = registry.makeCounter(descriptor: Self.describe(name, help), labels: labels)
        if delta > 0 { counter.increment(by: Int64(delta)) }
    }

    /// Sets the gauge `name{labels}` (made on first use).
    func set(_ name: String, _ help: String, labels: [(String, String)] = [], to value: Double) {
        registry.makeGauge(descriptor: Self.describe(name, help), labels: labels).set(to: value)
    }

    /// A histogram in the Prometheus text format, from a lane histogram's snapshot; `labels` are
    /// put before `le` on each bucket line and on `_sum` and `_count`.
    static func histogramText(
        _ snapshot: LaneHistogram.Snapshot, name: String, help: String, labels: [(String, String)] = [],
        header: Bool = true
    ) -> String {
        var text = header ? "# HELP \(name) \(help)\n# TYPE \(name) histogram\n" : ""
        let own = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }
        let prefix = own.isEmpty ? "" : own.joined(separator: ",") + ","
        let plain = own.isEmpty ? "" : "{" + own.joined(separator: ",") + "}"
        let bounds = TenantCounters.durationBoundsSeconds
        for (index, count) in snapshot.cumulative.enumerated() {
            let bound = index < bounds.count ? "\(bounds[index])" : "+Inf"
            text += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(count)\n"
        }
        text += "\(name)_sum\(plain) \(Double(snapshot.sumNanoseconds) / 1e9)\n"
        text += "\(name)_count\(plain) \(snapshot.count)\n"
        return text
    }

    /// A label value in the text format: backslash, quote and newline escaped.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
