import Foundation
import Logging
import NIOCore
import Prometheus
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// Key of one collapsed upstream fetch: a tenant's request target.
struct CollapseKey: Hashable, Sendable {
    var tenant: String
    var target: String
}

/// Everything a running node shares between its listeners: the tenant directory, each tenant's
/// cache, the upstream client, metrics and the collapsing table. Built whole from a validated
/// config, so a node either starts with all of it or not at all.
final class EdgeRuntime: Sendable {
    let config: EdgeConfig
    let caches: [String: TenantCache]
    /// Normalized hostname → its tenant's cache (built once; read-only).
    let cachesByHost: [String: TenantCache]
    let clock: any CacheClock
    let upstream: UpstreamClient
    let metrics: EdgeMetrics
    let adminTokens: AdminTokens
    let logger: Logger
    let startedAt: Double
    /// In-flight upstream fetches by key; protects the waiters of each collapsed miss.
    let collapser = Mutex(RequestCollapser<CollapseKey, EventLoopPromise<FetchOutcome>>())
    let securityEventCount = Atomic<Int>(0)

    init(config: EdgeConfig, group: any EventLoopGroup, registry: PrometheusCollectorRegistry, logger: Logger,
         clock: any CacheClock = SystemCacheClock()) throws(EdgeError) {
        self.config = config
        self.clock = clock
        self.logger = logger
        let masterKey: [UInt8]?
        if let path = config.security.masterKeyFile, !path.isEmpty {
            masterKey = try StandaloneKeyring.readKeyFile(path, key: "security.master_key_file")
        } else {
            masterKey = nil
        }
        let keyring = try StandaloneKeyring(masterKey: masterKey, tenants: config.tenants, encryption: config.security.encryption)
        let quotas = config.effectiveQuotas()
        var caches: [String: TenantCache] = [:]
        for tenant in config.tenants {
            guard let cipher = keyring.cipher(forTenant: tenant.id) else { continue }
            caches[tenant.id] = TenantCache(tenant: tenant, cipher: cipher, quotaBytes: quotas[tenant.id] ?? 0)
        }
        self.caches = caches
        var byHost: [String: TenantCache] = [:]
        for tenant in config.tenants {
            for host in tenant.hosts { byHost[TenantDirectory.normalize(host: host)] = caches[tenant.id] }
        }
        self.cachesByHost = byHost
        self.adminTokens = try AdminTokensReader.load(path: config.security.adminTokensFile)
        self.upstream = UpstreamClient(group: group, limits: config.limits)
        self.metrics = EdgeMetrics(registry: registry, tenants: config.tenants.map(\.id))
        self.startedAt = clock.now()
    }

    /// The tenant cache for a `Host` value: one dictionary read for an already-normalized host.
    func cache(forHost host: String) -> TenantCache? {
        cachesByHost[host] ?? cachesByHost[TenantDirectory.normalize(host: host)]
    }

    /// A security event: counted, logged with the tenant id only (never key material or bodies).
    func securityEvent(_ kind: String, tenant: String, detail: String) {
        metrics.recordSecurityEvent(kind)
        securityEventCount.add(1, ordering: .relaxed)
        logger.warning("security event", metadata: ["kind": "\(kind)", "tenant": "\(tenant)", "detail": "\(detail)"])
    }

    /// Whether this node may store the tenant's data (its region is in the tenant's residency).
    func mayStore(_ tenant: TenantConfig) -> Bool {
        tenant.residency.isEmpty || tenant.residency.contains(config.node.region)
    }

    func shutdown() async {
        try? await upstream.shutdown()
    }
}
