import Foundation
import Prometheus
import TenantEdgeCore

/// What a scrape brings up to date before rendering: per-tenant requests, durations, occupancy
/// against quota and upstream figures; the shared tier; the feed; the config; GeoIP; and whether
/// the secret files the node reads can still be read (a rotation that left one unreadable shows
/// before the next restart fails on it).
extension EdgeMetrics {
    func render(runtime: EdgeRuntime, l2Bytes: [String: Int]) -> [UInt8] {
        scraping.withLock { _ in renderAlone(runtime: runtime, l2Bytes: l2Bytes) }
    }

    private func renderAlone(runtime: EdgeRuntime, l2Bytes: [String: Int]) -> [UInt8] {
        let table = runtime.table
        let caches = table.tenants.compactMap { runtime.caches[$0.id] }
        updateTenants(caches, runtime: runtime, l2Bytes: l2Bytes)
        updateSharedTier(runtime)
        updateFeed(runtime.feedStatus, now: runtime.clock.now())
        set("edge_config_version", "Version of the applied config bundle (0 standalone)", to: Double(table.version))
        updateGeo(runtime.geo, regions: table.regions)
        updateSecretFiles(runtime.config)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        buffer.append(contentsOf: durationText(caches).utf8)
        if runtime.config.cache.redis != nil {
            let snapshots = runtime.allL2Tiers.map { $0.counters.callDuration.snapshot() }
            buffer.append(
                contentsOf: Self.histogramText(
                    LaneHistogram.Snapshot.sum(snapshots, buckets: TenantCounters.durationBoundsSeconds.count + 1),
                    name: "edge_l2_call_duration_seconds",
                    help: "Time from submitting a shared-tier call to its reply (waiting for a connection included)"
                ).utf8)
        }
        return buffer
    }

    private func updateTenants(_ caches: [TenantCache], runtime: EdgeRuntime, l2Bytes: [String: Int]) {
        for cache in caches {
            let tenant = cache.tenant.id
            let counters = cache.counters
            // A rebuilt cache (new counters) starts its totals again from zero.
            let fresh = reportedCounters.withLock { reported -> Bool in
                defer { reported[tenant] = counters }
                return reported[tenant] !== counters
            }
            if fresh {
                let label = "|tenant=\(tenant)"
                reported.withLock { $0 = $0.filter { !$0.key.contains(label + "|") && !$0.key.hasSuffix(label) } }
            }
            for kind in TenantCounters.Kind.allCases {
                advance(
                    "edge_requests_total", "Tenant requests by cache outcome",
                    labels: [("tenant", tenant), ("cache_status", kind.label)], to: counters.total(kind))
            }
            advance(
                "edge_l2_hits_total",
                "Hits answered from the shared tier (also counted as hits in edge_requests_total)",
                labels: [("tenant", tenant)], to: counters.sharedTierHits)
            for reason in TenantCounters.UpstreamError.allCases {
                advance(
                    "edge_upstream_errors_total", "Upstream fetches that failed or answered 5xx, by reason",
                    labels: [("tenant", tenant), ("reason", reason.label)], to: counters.total(reason))
            }
            let occupancy = cache.occupancy()
            advance(
                "edge_cache_evictions_total", "Entries evicted to keep a tenant within its quota",
                labels: [("tenant", tenant)], to: occupancy.evictions)
            let bytesHelp = "Bytes held per tenant and tier"
            let quotaHelp = "Bytes each tenant may hold per tier"
            set(
                "edge_cache_bytes", bytesHelp, labels: [("tenant", tenant), ("tier", "memory")],
                to: Double(occupancy.bytes))
            set(
                "edge_cache_quota_bytes", quotaHelp, labels: [("tenant", tenant), ("tier", "memory")],
                to: Double(occupancy.quota))
            if let bytes = l2Bytes[tenant] {
                set("edge_cache_bytes", bytesHelp, labels: [("tenant", tenant), ("tier", "redis")], to: Double(bytes))
            }
            if let redis = runtime.config.cache.redis, runtime.l2(for: tenant) != nil {
                let quota = cache.tenant.quotaBytesL2 ?? redis.tenantQuotaBytes
                set(
                    "edge_cache_quota_bytes", quotaHelp, labels: [("tenant", tenant), ("tier", "redis")],
                    to: Double(quota))
            }
        }
    }

    private func updateSharedTier(_ runtime: EdgeRuntime) {
        let help = "1 when the cache tier is usable"
        set("edge_tier_up", help, labels: [("tier", "memory")], to: 1)
        if let up = runtime.l2IsUp { set("edge_tier_up", help, labels: [("tier", "redis")], to: up ? 1 : 0) }
        if runtime.feedStatus.follows {
            set("edge_tier_up", help, labels: [("tier", "origin_feed")], to: runtime.feedStatus.isUp ? 1 : 0)
        }
        guard runtime.config.cache.redis != nil else { return }
        let tiers = runtime.allL2Tiers
        advance(
            "edge_l2_errors_total", "Shared-tier calls that failed or timed out", labels: [],
            to: tiers.reduce(0) { $0 + $1.counters.errors.load(ordering: .relaxed) })
        advance(
            "edge_l2_connection_waits_total", "Shared-tier calls that waited for a connection to be made", labels: [],
            to: tiers.reduce(0) { $0 + $1.connectionWaits })
        set(
            "edge_purge_acknowledgements_unwritten",
            "Tenants whose latest purge acknowledgement Redis has not confirmed yet (written again every 2 s)",
            to: Double(runtime.acknowledger.waiting))
        set(
            "edge_sibling_purge_subscriptions_down",
            "Sibling purge subscriptions not live: while above 0, purges made on other nodes may not reach this one",
            to: Double(runtime.table.purgeFollowers.filter { !$0.isSubscribed }.count))
    }

    private func updateFeed(_ feed: FeedStatus, now: Double) {
        set(
            "edge_invalidation_lag_seconds", "Seconds since the invalidation feed was last heard (0 standalone)",
            to: feed.lag(now: now) ?? 0)
        set(
            "edge_invalidation_lag_bound_seconds",
            "origin.max_invalidation_lag_s: past it, bounded staleness (0 standalone)", to: feed.lagBound ?? 0)
        set(
            "edge_feed_cursor", "Sequence number of the last invalidation applied (0 standalone)",
            to: Double(feed.cursor.load(ordering: .relaxed)))
        advance(
            "edge_feed_reconnects_total", "Feed polls that failed and were tried again", labels: [],
            to: feed.reconnects.load(ordering: .relaxed))
    }

    /// GeoIP figures: lookups that failed, reloads by result, decisions by source, region states.
    private func updateGeo(_ geo: GeoRouting, regions: [RegionConfig]) {
        advance(
            "edge_geoip_lookup_errors_total", "GeoIP lookups that failed (broken record); the client got the fallback",
            labels: [], to: geo.lookupErrors.load(ordering: .relaxed))
        let reloads = "GeoIP database reloads, by result"
        advance(
            "edge_geoip_reloads_total", reloads, labels: [("result", "ok")], to: geo.reloads.load(ordering: .relaxed))
        advance(
            "edge_geoip_reloads_total", reloads, labels: [("result", "failed")],
            to: geo.reloadFailures.load(ordering: .relaxed))
        let decisions = "Region decisions, by source"
        advance("edge_geo_decisions_total", decisions, labels: [("source", "cache")], to: geo.cacheHits)
        advance("edge_geo_decisions_total", decisions, labels: [("source", "lookup")], to: geo.cacheMisses)
        let healthy = geo.healthy(regions)
        for region in regions {
            set(
                "edge_region_up", "1 when the region may be chosen for clients (not marked down, probes answer)",
                labels: [("region", region.name)], to: healthy.contains(region.name) ? 1 : 0)
        }
    }

    /// 1 per secret file the config names that the node can read now, 0 when it cannot.
    private func updateSecretFiles(_ config: EdgeConfig) {
        let files: [(String, String?)] = [
            ("kek", config.security.kekFile), ("master_key", config.security.masterKeyFile),
            ("admin_tokens", config.security.adminTokensFile),
            ("signing_public_key", config.security.configPublicKey),
            ("tls_cert", config.listen.adminCertFile), ("tls_key", config.listen.adminKeyFile),
            ("ca", config.origin?.caFile), ("origin_token", config.origin?.tokenFile),
        ]
        for case (let name, let path?) in files where !path.isEmpty {
            set(
                "edge_secret_file_readable", "1 when the node can read the secret file it is configured with",
                labels: [("file", name)], to: access(path, R_OK) == 0 ? 1 : 0)
        }
    }

    /// The lane histograms: request duration per tenant (and `_unknown`), upstream duration per
    /// tenant, and the shared tier's call duration.
    private func durationText(_ caches: [TenantCache]) -> String {
        let request = "edge_request_duration_seconds"
        let requestHelp = "Time from a complete request to its response, tenant traffic"
        var text = ""
        for (index, cache) in caches.enumerated() {
            text += Self.histogramText(
                cache.counters.duration.snapshot(), name: request, help: requestHelp,
                labels: [("tenant", cache.tenant.id)], header: index == 0)
        }
        text += Self.histogramText(
            unknownTenantDuration.snapshot(), name: request, help: requestHelp, labels: [("tenant", "_unknown")],
            header: caches.isEmpty)
        let upstream = "edge_upstream_duration_seconds"
        for (index, cache) in caches.enumerated() {
            text += Self.histogramText(
                cache.counters.upstreamDuration.snapshot(), name: upstream,
                help: "Time from sending a request upstream to its complete answer or failure",
                labels: [("tenant", cache.tenant.id)], header: index == 0)
        }
        return text
    }
}
