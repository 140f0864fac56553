import Foundation
import Prometheus
import Synchronization
import TenantEdgeCore

/// The node's Prometheus metrics (`GET /metrics` on the admin listener). Nothing on the hit path
/// touches the registry: requests are counted per tenant and worker lane (`TenantCounters`) and
/// timed in a per-lane histogram, and a scrape adds what was counted since the last one to the
/// registry's counters and renders the histogram. Gauges that mirror cache occupancy are brought up
/// to date at the scrape too.
final class EdgeMetrics: Sendable {
    static let securityKinds = ["decrypt_failed", "auth_failed"]
    static let invalidationKinds = ["key", "tag", "prefix", "all"]

    static var requestsTotal: MetricNameDescriptor {
        describe("edge_requests_total", "Tenant requests by cache outcome")
    }

    static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    let registry: PrometheusCollectorRegistry
    /// Per tenant, so a scrape adds the difference: the counters last reported (held, so a rebuilt
    /// cache's new counters can never take the old one's address and be mistaken for it) and the
    /// totals reported from them.
    private let requestsReported = Mutex<[String: (counters: TenantCounters, totals: [Int])]>([:])
    private let configVersion: Gauge
    private let invalidationLag: Gauge
    private let unknownTenantRequests: Counter
    /// Time from a complete request to its response, tenant traffic; rendered by `render`.
    let duration = LaneHistogram(boundsNanoseconds: durationBoundsSeconds.map { Int64($0 * 1e9) })
    static let durationBoundsSeconds = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    private let securityEvents: [String: Counter]
    private let invalidations: [String: Counter]
    private let evictionsReported = Mutex<[String: Int]>([:])  // last eviction totals exported per tenant
    private let geoReported = Mutex<[String: Int]>([:])  // last geo counter totals exported, by metric name

    private let redisUp: Gauge?

    init(registry: PrometheusCollectorRegistry, tenants: [String], hasRedis: Bool = false) {
        self.registry = registry
        for tenant in tenants { _ = Self.requestCounters(registry, tenant: tenant) }
        unknownTenantRequests = registry.makeCounter(
            descriptor: Self.requestsTotal, labels: [("tenant", "_unknown"), ("cache_status", "bypass")])
        var security: [String: Counter] = [:]
        for kind in Self.securityKinds {
            security[kind] = registry.makeCounter(
                descriptor: Self.describe("edge_security_events_total", "Security events: decrypt_failed, auth_failed"),
                labels: [("kind", kind)])
        }
        securityEvents = security
        var applied: [String: Counter] = [:]
        for kind in Self.invalidationKinds {
            applied[kind] = registry.makeCounter(
                descriptor: Self.describe("edge_invalidations_applied_total", "Purge selectors applied, by kind"),
                labels: [("kind", kind)])
        }
        invalidations = applied
        invalidationLag = registry.makeGauge(
            descriptor: Self.describe(
                "edge_invalidation_lag_seconds", "Seconds since the invalidation feed was last heard (0 standalone)"))
        invalidationLag.set(to: 0)
        configVersion = registry.makeGauge(
            descriptor: Self.describe("edge_config_version", "Version of the applied config bundle (0 standalone)"))
        configVersion.set(to: 0)
        registry.makeGauge(
            descriptor: Self.describe("edge_tier_up", "1 when the cache tier is usable"), labels: [("tier", "memory")]
        ).set(to: 1)
        redisUp =
            hasRedis
            ? registry.makeGauge(
                descriptor: Self.describe("edge_tier_up", "1 when the cache tier is usable"),
                labels: [("tier", "redis")])
            : nil
    }

    /// `edge_requests_total` of one tenant, by outcome (the registry hands out the same counters again).
    private static func requestCounters(_ registry: PrometheusCollectorRegistry, tenant: String) -> [Counter] {
        TenantCounters.Kind.allCases.map {
            registry.makeCounter(descriptor: requestsTotal, labels: [("tenant", tenant), ("cache_status", $0.label)])
        }
    }

    /// Counters for tenants a bundle added, so they show at 0 before their first request.
    func registerTenants(_ tenants: [String]) {
        for tenant in tenants { _ = Self.requestCounters(registry, tenant: tenant) }
    }

    func setConfigVersion(_ version: Int) { configVersion.set(to: Double(version)) }
    func setInvalidationLag(_ seconds: Double) { invalidationLag.set(to: seconds) }

    /// Times a tenant request (the tenant's `TenantCounters` counted its outcome).
    @inline(__always)
    func recordRequest(elapsedNanoseconds: Int64) { duration.record(nanoseconds: elapsedNanoseconds) }

    /// A request answered before any tenant was known.
    func recordUnknownTenantRequest(elapsedNanoseconds: Int64) {
        unknownTenantRequests.increment()
        duration.record(nanoseconds: elapsedNanoseconds)
    }

    func recordSecurityEvent(_ kind: String) { securityEvents[kind]?.increment() }

    func recordInvalidation(_ kind: String, count: Int = 1) {
        if count > 0 { invalidations[kind]?.increment(by: Int64(count)) }
    }

    /// Brings occupancy gauges and eviction counters up to date, then renders the text format.
    /// Geo figures, brought up to date at scrape time: lookups that failed, reloads that failed,
    /// decisions answered from the cache or computed, and each region's state for the node.
    func updateGeo(_ geo: GeoRouting, regions: [RegionConfig]) {
        let totals = [
            (
                "edge_geoip_lookup_errors_total",
                "GeoIP lookups that failed (broken record); the client got the fallback region", [(String, String)](),
                geo.lookupErrors.load(ordering: .relaxed)
            ),
            (
                "edge_geoip_reloads_total", "GeoIP database reloads, by result", [("result", "ok")],
                geo.reloads.load(ordering: .relaxed)
            ),
            (
                "edge_geoip_reloads_total", "GeoIP database reloads, by result", [("result", "failed")],
                geo.reloadFailures.load(ordering: .relaxed)
            ),
            (
                "edge_geo_decisions_total", "Region decisions, by source", [("source", "cache")],
                geo.cacheHits
            ),
            (
                "edge_geo_decisions_total", "Region decisions, by source", [("source", "lookup")],
                geo.cacheMisses
            ),
        ]
        for (name, help, labels, total) in totals {
            let key = name + labels.map { "|\($0.1)" }.joined()
            let delta = geoReported.withLock { reported -> Int in
                defer { reported[key] = total }
                return total - (reported[key] ?? 0)
            }
            let counter = registry.makeCounter(descriptor: Self.describe(name, help), labels: labels)
            if delta > 0 { counter.increment(by: Int64(delta)) }
        }
        let healthy = geo.healthy(regions)
        for region in regions {
            registry.makeGauge(
                descriptor: Self.describe(
                    "edge_region_up", "1 when the region may be chosen for clients (not marked down, probes answer)"),
                labels: [("region", region.name)]
            ).set(to: healthy.contains(region.name) ? 1 : 0)
        }
    }

    func render(caches: [TenantCache], redisIsUp: Bool? = nil, redisBytes: [String: Int] = [:]) -> [UInt8] {
        if let redisIsUp { redisUp?.set(to: redisIsUp ? 1 : 0) }
        for (tenant, bytes) in redisBytes {
            registry.makeGauge(
                descriptor: Self.describe("edge_cache_bytes", "Bytes held per tenant and tier"),
                labels: [("tenant", tenant), ("tier", "redis")]
            )
            .set(to: Double(bytes))
        }
        for cache in caches {
            let occupancy = cache.occupancy()
            registry.makeGauge(
                descriptor: Self.describe("edge_cache_bytes", "Bytes held per tenant and tier"),
                labels: [("tenant", cache.tenant.id), ("tier", "memory")]
            )
            .set(to: Double(occupancy.bytes))
            let delta = evictionsReported.withLock { reported -> Int in
                let delta = occupancy.evictions - (reported[cache.tenant.id] ?? 0)
                reported[cache.tenant.id] = occupancy.evictions
                return delta
            }
            let counter = registry.makeCounter(
                descriptor: Self.describe(
                    "edge_cache_evictions_total", "Entries evicted to keep a tenant within its quota"),
                labels: [("tenant", cache.tenant.id)])
            if delta > 0 { counter.increment(by: Int64(delta)) }
        }
        exportRequests(caches)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        buffer.append(contentsOf: Self.histogramText(duration.snapshot(), name: "edge_request_duration_seconds").utf8)
        return buffer
    }

    /// Adds what each tenant's lane counters counted since the last scrape to `edge_requests_total`.
    /// A tenant whose cache was rebuilt (new counters) starts again from zero.
    private func exportRequests(_ caches: [TenantCache]) {
        for cache in caches {
            let counters = cache.counters
            // Read and recorded under the lock, never below what was reported: two scrapes at once
            // must not both add the same requests.
            let added = requestsReported.withLock { reported -> [Int] in
                let totals = TenantCounters.Kind.allCases.map(counters.total)
                var before = Array(repeating: 0, count: totals.count)
                if let last = reported[cache.tenant.id], last.counters === counters { before = last.totals }
                let now = zip(totals, before).map { Swift.max($0, $1) }
                reported[cache.tenant.id] = (counters, now)
                return zip(now, before).map { $0 - $1 }
            }
            for (counter, delta) in zip(Self.requestCounters(registry, tenant: cache.tenant.id), added) where delta > 0
            {
                counter.increment(by: Int64(delta))
            }
        }
    }

    /// A histogram in the Prometheus text format, from a lane histogram's snapshot.
    static func histogramText(_ snapshot: LaneHistogram.Snapshot, name: String) -> String {
        var text = "# HELP \(name) Time from a complete request to its response, tenant traffic\n"
        text += "# TYPE \(name) histogram\n"
        let bounds = durationBoundsSeconds
        for (index, count) in snapshot.cumulative.enumerated() {
            let bound = index < bounds.count ? "\(bounds[index])" : "+Inf"
            text += "\(name)_bucket{le=\"\(bound)\"} \(count)\n"
        }
        text += "\(name)_sum \(Double(snapshot.sumNanoseconds) / 1e9)\n"
        text += "\(name)_count \(snapshot.count)\n"
        return text
    }
}
