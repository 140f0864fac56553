import Foundation

/// The node's whole configuration, as read from YAML and the environment (see `docs/configuration.md`
/// and the reader in TenantEdgeConfig). Every field has the default the docs name, so a minimal file
/// holds only what differs. A value of this type has passed `validate()` before any of it is used.
public struct EdgeConfig: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        public var id: String
        public var region: String
        public init(id: String = "edge-1", region: String = "local") {
            self.id = id
            self.region = region
        }
    }

    public struct Listen: Sendable, Equatable {
        /// Tenant traffic. Default `127.0.0.1:8080`.
        public var http: String
        /// Admin API and metrics; never the same address as `http`. Default `127.0.0.1:9090`.
        public var admin: String
        /// Serve the admin listener over HTTPS with this certificate and key (PEM files). Default
        /// none: plain HTTP, fit only for loopback, since bundles and the admin token cross it.
        public var adminCertFile: String? = nil
        public var adminKeyFile: String? = nil
        /// Accept tenant traffic on one socket per event loop (`SO_REUSEPORT`, nginx's `reuseport`)
        /// instead of one socket on one loop handing connections to the others. Default false.
        public var reusePort = false
        public init(http: String = "127.0.0.1:8080", admin: String = "127.0.0.1:9090") {
            self.http = http
            self.admin = admin
        }
    }

    public enum IsolationStrategy: String, Sendable, CaseIterable { case database, schema, row, hybrid }
    public enum IsolationLevel: String, Sendable, CaseIterable { case strict, standard }

    public struct Redis: Sendable, Equatable {
        /// The Redis to use; empty when `sentinel` names it instead.
        public var url: String
        /// The primary found through Redis Sentinel instead of a fixed `url`.
        public var sentinel: RedisSentinelConfig? = nil
        /// Connections per event loop that calls the tier (default 1: a connection pipelines every
        /// call in flight on it, and 2 measured no better on 2 cores).
        public var poolSize: Int = 1
        public var timeoutMs: Int = 50
        /// Live L2 bytes each tenant may hold (`tenants[].quota_bytes_l2` overrides). Default 256 MiB;
        /// writes past it are refused, so one tenant, or a client busting its cache with query
        /// strings, cannot fill the region's Redis and evict the others.
        public var tenantQuotaBytes: Int = 268_435_456
        public init(url: String, poolSize: Int = 1, timeoutMs: Int = 50) {
            self.url = url
            self.poolSize = poolSize
            self.timeoutMs = timeoutMs
        }
    }

    public struct Cache: Sendable, Equatable {
        /// L1 budget in bytes, divided by tenant quotas. Default 256 MiB.
        public var memoryBytes: Int = 268_435_456
        /// Freshness for responses that state none. Default 3600 s. Env `TENANT_CACHE_TTL`.
        public var defaultTTLSeconds: Int = 3600
        public var isolationStrategy: IsolationStrategy = .hybrid
        /// L2 tier; nil means L1 only.
        public var redis: Redis? = nil
        /// Re-seal an L1 entry under the current key version when it is read under an older one,
        /// so hot entries leave a version before it is retired. Default off (one extra seal per
        /// such hit).
        public var resealOnRead: Bool = false
        public init() {}
    }

    public struct Security: Sendable, Equatable {
        public var isolationLevel: IsolationLevel = .strict
        public var encryption: Bool = true
        public var kekFile: String? = nil
        public var masterKeyFile: String? = nil
        public var configPublicKey: String? = nil
        public var adminTokensFile: String? = nil
        public init() {}
    }

    public struct Origin: Sendable, Equatable {
        public var url: String
        /// Origin replicas to fail over between (`origin.urls`), in order of preference; when set,
        /// `url` is unused.
        public var urls: [String] = []
        public var caFile: String? = nil
        public var tokenFile: String? = nil
        public var pollWaitSeconds: Int = 25
        public var maxInvalidationLagSeconds: Int = 300
        public init(url: String) { self.url = url }
        /// The replicas to use, in order: `urls`, or `url` alone.
        public var replicas: [String] { urls.isEmpty ? [url] : urls }
    }

    public struct GeoIP: Sendable, Equatable {
        /// A MaxMind DB (City or Country). Default none: every client is "unknown-address".
        public var database: String? = nil
        /// Peers allowed to tell the client's address in `X-Forwarded-For` (addresses or CIDRs).
        public var trustedProxies: [String] = []
        /// How often the database file is checked for replacement (a new inode, size or mtime).
        /// Default 2 s; 0 reloads only on SIGHUP.
        public var watchIntervalSeconds: Int = 2
        /// How often the other regions' health endpoints are probed. Default 10 s; 0 turns probes off.
        public var probeIntervalSeconds: Int = 10
        /// Per-address region decisions kept, so the hit path pays one hash lookup. Default 65,536.
        public var decisionCacheEntries: Int = 65_536
        public init() {}
    }

    /// HTTP limits and upstream timeouts; the interface document is silent on them, these are the
    /// defaults an nginx operator would recognise (`large_client_header_buffers`, `proxy_*_timeout`).
    public struct Limits: Sendable, Equatable {
        /// Largest request head (request line plus headers). Default 16 KiB; larger gets `431`.
        public var maxHeaderBytes: Int = 16_384
        /// Largest request body. Default 1 MiB; larger gets `413`.
        public var maxRequestBodyBytes: Int = 1_048_576
        /// Largest upstream response body that is proxied. Default 16 MiB; larger gets `502`.
        public var maxResponseBodyBytes: Int = 16_777_216
        /// Upstream connect timeout. Default 2000 ms; exceeded gets `504` (or stale-if-error).
        public var upstreamConnectTimeoutMs: Int = 2000
        /// Upstream whole-response timeout. Default 10000 ms.
        public var upstreamReadTimeoutMs: Int = 10_000
        /// Idle keep-alive connections kept per upstream host. Default 64.
        public var upstreamPoolSize: Int = 64
        /// Seconds a SIGTERM waits for in-flight requests before closing. Default 10.
        public var drainSeconds: Int = 10
        /// Longest request target. Default 8 KiB (nginx's `large_client_header_buffers` line); longer
        /// gets `414`.
        public var maxTargetBytes: Int = 8192
        /// Time a client has to send a whole request head from its first byte (and, on a new
        /// connection, the TLS handshake), and the longest pause between two body reads. Default
        /// 60 000 ms (nginx's `client_header_timeout`); exceeded gets `408` and a close.
        public var headerTimeoutMs: Int = 60_000
        /// Time an idle keep-alive connection is kept. Default 75 s (nginx's `keepalive_timeout`).
        public var idleTimeoutSeconds: Int = 75
        /// Open connections per listener; further ones are closed at once. Default 10,000.
        public var maxConnections: Int = 10_000
        /// Pipelined requests queued on one connection; reads stop while the queue is full. Default 8.
        public var maxPipelinedRequests: Int = 8
        public init() {}

        /// Config bundles may be larger than tenant request bodies: the admin listener takes up to 8 MiB.
        public static let maxBundleBytes = 8 << 20

        /// The limits of the admin listener: these, with room for a config bundle.
        public var forAdmin: Limits {
            var limits = self
            limits.maxRequestBodyBytes = max(maxRequestBodyBytes, Self.maxBundleBytes)
            return limits
        }
    }

    public var node = Node()
    public var listen = Listen()
    public var stateDir: String = "./state"
    public var cache = Cache()
    public var security = Security()
    public var origin: Origin? = nil
    public var geoip = GeoIP()
    public var monitoring: Bool = true
    /// `logging.format` (`text` or `json`) and `logging.level`.
    public var logging = LogSettings()
    /// `tracing.otlp_endpoint`, `tracing.service_name`, `tracing.sample_ratio`.
    public var tracing = TracingSettings()
    public var limits = Limits()
    public var regions: [RegionConfig] = []
    public var tenants: [TenantConfig] = []

    public init() {}

    /// The L2 layout a tenant gets: the global strategy, or under `hybrid` the tenant's own choice
    /// (default `row`).
    public func isolation(of tenant: TenantConfig) -> IsolationStrategy {
        guard cache.isolationStrategy == .hybrid else { return cache.isolationStrategy }
        let chosen = tenant.isolation ?? .row
        return chosen == .hybrid ? .row : chosen
    }
}

/// A region other nodes may redirect to.
public struct RegionConfig: Sendable, Equatable {
    public var name: String
    public var lat: Double
    public var lon: Double
    /// Where clients of this region are redirected: the path and query are appended, and `{host}`,
    /// when present, is replaced by the request's host (`https://eu-west.{host}`), so that one
    /// region name can serve every tenant's own hostname.
    public var publicURL: String
    /// ISO country codes whose clients go here when the GeoIP record has no coordinates (Country
    /// databases). Default none: such clients go by continent.
    public var countries: [String] = []
    /// Marked down by the operator (bundle or node file): never chosen for a client. Default false.
    public var down: Bool = false
    public init(name: String, lat: Double, lon: Double, publicURL: String, down: Bool = false) {
        self.name = name
        self.lat = lat
        self.lon = lon
        self.publicURL = publicURL
        self.down = down
    }

    /// The URL a node probes to learn whether this region is up: `public_url` + `/healthz`; nil
    /// when the URL is a `{host}` template (there is no one host to ask) or empty.
    public var healthURL: String? {
        guard !publicURL.isEmpty, !publicURL.contains("{host}") else { return nil }
        return (publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL) + "/healthz"
    }

    /// Where a client of `host` asking for `target` (path and query) is sent.
    public func redirectLocation(host: String, target: String) -> String {
        var base = publicURL.replacingOccurrences(of: "{host}", with: host)
        if base.hasSuffix("/") { base.removeLast() }
        return base + (target.hasPrefix("/") ? target : "/" + target)
    }
}

/// One tenant: its hostnames, its upstream and its cache rules.
public struct TenantConfig: Sendable, Equatable {
    public enum GeoMode: String, Sendable, CaseIterable { case redirect, hint, off }

    public var id: String
    public var hosts: [String]
    public var upstream: String
    /// Regions that may store this tenant's data; empty means any.
    public var residency: [String] = []
    public var geoMode: GeoMode = .off
    /// L1 bytes reserved for this tenant; nil means an equal share of what explicit quotas leave.
    public var quotaBytes: Int? = nil
    /// Freshness for responses that state none; nil means `cache.default_ttl_s`.
    public var defaultTTLSeconds: Int? = nil
    /// Per-tenant isolation under the `hybrid` strategy; nil means `row`.
    public var isolation: EdgeConfig.IsolationStrategy? = nil
    /// The tenant's own Redis (URL with its logical database) under the `database` strategy.
    public var redisURL: String? = nil
    /// The tenant's data keys as a bundle carries them: sealed under the region KEK (AES-256-GCM,
    /// AAD `tenant-key:<id>:<version>`). Empty in a node file (standalone keys come from the master key).
    public var wrappedKeys: [WrappedKey] = []
    /// The tenant's naming key (digests), sealed the same way with AAD `tenant-name-key:<id>`; it
    /// does not rotate, so a new data key keeps every entry's name.
    public var wrappedNamingKey: [UInt8]? = nil
    /// `redis_url` as a bundle carries it when the region has a KEK: sealed (AES-256-GCM, AAD
    /// `tenant-redis-url:<id>`), so its password is never in clear on the wire or on the node's
    /// disk. Opened into `redisURL` when the tenant set is built, then cleared.
    public var sealedRedisURL: [UInt8]? = nil
    /// Live L2 bytes of this tenant; nil means `cache.redis.tenant_quota_bytes`.
    public var quotaBytesL2: Int? = nil
    /// Put request paths in RFC 3986 normal form for the key and the upstream (`RequestTarget`).
    /// Default on; off for upstreams that tell `/a%2Db` from `/a-b` or `//x` from `/x`.
    public var normalizePath: Bool = true
    /// Store and share answers to requests that carry `Cookie` even when the response is not
    /// explicitly public. Default off: a cookie usually selects a user.
    public var shareCookieRequests: Bool = false
    /// Add `Server-Timing` (`edge;dur=`, `l2;dur=`, `upstream;dur=`) to this tenant's responses.
    /// Default off: it tells clients how the node answered.
    public var serverTiming: Bool = false
    /// The share of this tenant's requests written to the access log, 0 to 1. Default 0 (off).
    public var accessLogSample: Double = 0

    /// The host the upstream is always sent (`Host`, `X-Forwarded-Host`): the tenant's first host,
    /// normalised. The cache key does not hold the client's `Host`, so the upstream must never see it.
    public var canonicalHost: String { hosts.first.map { TenantDirectory.normalize(host: $0) } ?? "" }

    public struct WrappedKey: Sendable, Equatable {
        public var version: UInt32
        public var wrapped: [UInt8]
        public init(version: UInt32, wrapped: [UInt8]) {
            self.version = version
            self.wrapped = wrapped
        }
    }

    public init(id: String, hosts: [String], upstream: String) {
        self.id = id
        self.hosts = hosts
        self.upstream = upstream
    }
}
