import Foundation
import TenantEdgeCore
import Yams

/// Reads `EdgeConfig` from YAML and the environment (docs/configuration.md).
///
/// Every key is optional and defaults as documented on `EdgeConfig`; unknown keys, wrong types and
/// invalid values are all reported, one `ConfigProblem` each, naming the dotted key. Environment
/// variables override the file: `TENANT_ISOLATION_LEVEL`, `TENANT_ENCRYPTION_ENABLED`,
/// `TENANT_MONITORING_ENABLED`, `TENANT_CACHE_TTL`. Relative paths in the file are resolved against
/// the file's directory, so a config works from any working directory.
public struct ConfigReader {
    public internal(set) var problems: [ConfigProblem] = []

    public init() {}

    /// Reads, applies the environment, and validates. Throws one `EdgeError` whose message lists
    /// every problem, one per line.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(EdgeError) -> EdgeConfig
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "config: cannot read '\(path)'")
        }
        var reader = ConfigReader()
        let baseDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let config = reader.read(
            yaml: String(decoding: data, as: UTF8.self), environment: environment, baseDirectory: baseDirectory)
        let problems = reader.problems + (reader.problems.isEmpty ? config.validate() : [])
        guard problems.isEmpty else {
            throw EdgeError(.invalidConfig, problems.map(\.description).joined(separator: "\n"))
        }
        return config
    }

    /// Parses a document; problems accumulate in `problems`.
    public mutating func read(yaml: String, environment: [String: String] = [:], baseDirectory: String? = nil)
        -> EdgeConfig
    {
        var config = EdgeConfig()
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            problems.append(ConfigProblem("config", "is not valid YAML: \(Self.firstLine(of: error))"))
            return config
        }
        guard let root else {
            problems.append(ConfigProblem("config", "is empty"))
            return config
        }
        guard
            let top = mapping(
                root, "config",
                allowed: [
                    "node", "listen", "state_dir", "cache", "security", "origin", "geoip", "monitoring", "limits",
                    "regions", "tenants", "logging", "tracing",
                ])
        else { return config }

        if let node = mapping(top["node"], "node", allowed: ["id", "region"]) {
            string(node, "id", "node") { config.node.id = $0 }
            string(node, "region", "node") { config.node.region = $0 }
        }
        if let listen = mapping(top["listen"], "listen", allowed: ["http", "admin", "admin_tls", "reuse_port"]) {
            string(listen, "http", "listen") { config.listen.http = $0 }
            boolean(listen, "reuse_port", "listen") { config.listen.reusePort = $0 }
            string(listen, "admin", "listen") { config.listen.admin = $0 }
            if let tls = mapping(listen["admin_tls"], "listen.admin_tls", allowed: ["cert_file", "key_file"]) {
                string(tls, "cert_file", "listen.admin_tls") {
                    config.listen.adminCertFile = Self.resolve($0, baseDirectory)
                }
                string(tls, "key_file", "listen.admin_tls") {
                    config.listen.adminKeyFile = Self.resolve($0, baseDirectory)
                }
            }
        }
        string(top, "state_dir", nil) { config.stateDir = Self.resolve($0, baseDirectory) }
        readCache(top, &config, baseDirectory)
        readSecurity(top, &config, baseDirectory)
        if let origin = mapping(
            top["origin"], "origin",
            allowed: ["url", "urls", "ca_file", "token_file", "poll_wait_s", "max_invalidation_lag_s"])
        {
            var section = EdgeConfig.Origin(url: "")
            string(origin, "url", "origin") { section.url = $0 }
            strings(origin, "urls", "origin") { section.urls = $0 }
            string(origin, "ca_file", "origin") { section.caFile = Self.resolve($0, baseDirectory) }
            string(origin, "token_file", "origin") { section.tokenFile = Self.resolve($0, baseDirectory) }
            integer(origin, "poll_wait_s", "origin") { section.pollWaitSeconds = $0 }
            integer(origin, "max_invalidation_lag_s", "origin") { section.maxInvalidationLagSeconds = $0 }
            config.origin = section
        }
        if let geoip = mapping(
            top["geoip"], "geoip",
            allowed: [
                "database", "trusted_proxies", "watch_interval_s", "probe_interval_s",
                "decision_cache_entries",
            ])
        {
            string(geoip, "database", "geoip") { config.geoip.database = Self.resolve($0, baseDirectory) }
            strings(geoip, "trusted_proxies", "geoip") { config.geoip.trustedProxies = $0 }
            integer(geoip, "watch_interval_s", "geoip") { config.geoip.watchIntervalSeconds = $0 }
            integer(geoip, "probe_interval_s", "geoip") { config.geoip.probeIntervalSeconds = $0 }
            integer(geoip, "decision_cache_entries", "geoip") { config.geoip.decisionCacheEntries = $0 }
        }
        boolean(top, "monitoring", nil) { config.monitoring = $0 }
        readLogging(top) { config.logging = $0 }
        if let tracing = mapping(top["tracing"], "tracing", allowed: ["otlp_endpoint", "service_name", "sample_ratio"])
        {
            string(tracing, "otlp_endpoint", "tracing") { config.tracing.otlpEndpoint = $0 }
            string(tracing, "service_name", "tracing") { config.tracing.serviceName = $0 }
            number(tracing, "sample_ratio", "tracing") { config.tracing.sampleRatio = $0 }
        }
        readLimits(top, &config)
        readRegions(top, &config)
        readTenants(top, &config)
        applyEnvironment(environment, to: &config)
        return config
    }

    private mutating func readCache(_ top: [String: Node], _ config: inout EdgeConfig, _ base: String?) {
        guard
            let cache = mapping(
                top["cache"], "cache",
                allowed: [
                    "memory_bytes", "default_ttl_s", "isolation_strategy", "redis",
                    "reseal_on_read",
                ])
        else { return }
        boolean(cache, "reseal_on_read", "cache") { config.cache.resealOnRead = $0 }
        integer(cache, "memory_bytes", "cache") { config.cache.memoryBytes = $0 }
        integer(cache, "default_ttl_s", "cache") { config.cache.defaultTTLSeconds = $0 }
        enumeration(cache, "isolation_strategy", "cache") { config.cache.isolationStrategy = $0 }
        if let redis = mapping(
            cache["redis"], "cache.redis",
            allowed: ["url", "sentinel", "pool_size", "timeout_ms", "tenant_quota_bytes"])
        {
            var section = EdgeConfig.Redis(url: "")
            string(redis, "url", "cache.redis") { section.url = $0 }
            if let sentinel = mapping(
                redis["sentinel"], "cache.redis.sentinel",
                allowed: ["addresses", "master", "password_file", "sentinel_password_file", "database"])
            {
                var read = RedisSentinelConfig(addresses: [], master: "")
                strings(sentinel, "addresses", "cache.redis.sentinel") { read.addresses = $0 }
                string(sentinel, "master", "cache.redis.sentinel") { read.master = $0 }
                string(sentinel, "password_file", "cache.redis.sentinel") { read.passwordFile = Self.resolve($0, base) }
                string(sentinel, "sentinel_password_file", "cache.redis.sentinel") {
                    read.sentinelPasswordFile = Self.resolve($0, base)
                }
                integer(sentinel, "database", "cache.redis.sentinel") { read.database = $0 }
                section.sentinel = read
            }
            integer(redis, "tenant_quota_bytes", "cache.redis") { section.tenantQuotaBytes = $0 }
            integer(redis, "pool_size", "cache.redis") { section.poolSize = $0 }
            integer(redis, "timeout_ms", "cache.redis") { section.timeoutMs = $0 }
            config.cache.redis = section
        }
    }

    private mutating func readSecurity(_ top: [String: Node], _ config: inout EdgeConfig, _ base: String?) {
        guard
            let security = mapping(
                top["security"], "security",
                allowed: [
                    "isolation_level", "encryption", "kek_file", "master_key_file", "config_public_key",
                    "admin_tokens_file",
                ])
        else { return }
        enumeration(security, "isolation_level", "security") { config.security.isolationLevel = $0 }
        boolean(security, "encryption", "security") { config.security.encryption = $0 }
        string(security, "kek_file", "security") { config.security.kekFile = Self.resolve($0, base) }
        string(security, "master_key_file", "security") { config.security.masterKeyFile = Self.resolve($0, base) }
        string(security, "config_public_key", "security") { config.security.configPublicKey = Self.resolve($0, base) }
        string(security, "admin_tokens_file", "security") { config.security.adminTokensFile = Self.resolve($0, base) }
    }

    private mutating func readLimits(_ top: [String: Node], _ config: inout EdgeConfig) {
        guard
            let limits = mapping(
                top["limits"], "limits",
                allowed: [
                    "max_header_bytes", "max_request_body_bytes", "max_response_body_bytes",
                    "upstream_connect_timeout_ms",
                    "upstream_read_timeout_ms", "upstream_pool_size", "drain_s", "max_target_bytes",
                    "header_timeout_ms",
                    "idle_timeout_s", "max_connections", "max_pipelined_requests",
                ])
        else { return }
        integer(limits, "max_header_bytes", "limits") { config.limits.maxHeaderBytes = $0 }
        integer(limits, "max_request_body_bytes", "limits") { config.limits.maxRequestBodyBytes = $0 }
        integer(limits, "max_response_body_bytes", "limits") { config.limits.maxResponseBodyBytes = $0 }
        integer(limits, "upstream_connect_timeout_ms", "limits") { config.limits.upstreamConnectTimeoutMs = $0 }
        integer(limits, "upstream_read_timeout_ms", "limits") { config.limits.upstreamReadTimeoutMs = $0 }
        integer(limits, "upstream_pool_size", "limits") { config.limits.upstreamPoolSize = $0 }
        integer(limits, "drain_s", "limits") { config.limits.drainSeconds = $0 }
        integer(limits, "max_target_bytes", "limits") { config.limits.maxTargetBytes = $0 }
        integer(limits, "header_timeout_ms", "limits") { config.limits.headerTimeoutMs = $0 }
        integer(limits, "idle_timeout_s", "limits") { config.limits.idleTimeoutSeconds = $0 }
        integer(limits, "max_connections", "limits") { config.limits.maxConnections = $0 }
        integer(limits, "max_pipelined_requests", "limits") { config.limits.maxPipelinedRequests = $0 }
    }

    mutating func readRegions(_ top: [String: Node], _ config: inout EdgeConfig) {
        for (index, item) in sequence(top["regions"], "regions").enumerated() {
            let path = "regions[\(index)]"
            guard let region = mapping(item, path, allowed: ["name", "lat", "lon", "public_url", "down", "countries"])
            else { continue }
            var value = RegionConfig(name: "", lat: 0, lon: 0, publicURL: "")
            string(region, "name", path) { value.name = $0 }
            number(region, "lat", path) { value.lat = $0 }
            number(region, "lon", path) { value.lon = $0 }
            string(region, "public_url", path) { value.publicURL = $0 }
            boolean(region, "down", path) { value.down = $0 }
            strings(region, "countries", path) { value.countries = $0 }
            config.regions.append(value)
        }
    }

    /// Tenants from a node file, or from a bundle (`inBundle`), whose tenants may also list `keys`.
    package mutating func readTenants(_ top: [String: Node], _ config: inout EdgeConfig, inBundle: Bool = false) {
        for (index, item) in sequence(top["tenants"], "tenants").enumerated() {
            let path = "tenants[\(index)]"
            guard
                let tenant = mapping(
                    item, path,
                    allowed: Set(
                        [
                            "id", "hosts", "upstream", "residency", "geo_mode", "quota_bytes", "default_ttl_s",
                            "isolation", "redis_url",
                            "normalize_path", "share_cookie_requests", "quota_bytes_l2", "server_timing",
                            "access_log_sample",
                        ] + (inBundle ? ["keys", "naming_key", "redis_url_sealed"] : [])))
            else { continue }
            var value = TenantConfig(id: "", hosts: [], upstream: "")
            for required in ["id", "hosts", "upstream"] where tenant[required] == nil {
                problems.append(ConfigProblem("\(path).\(required)", "is required"))
            }
            string(tenant, "id", path) { value.id = $0 }
            strings(tenant, "hosts", path) { value.hosts = $0 }
            string(tenant, "upstream", path) { value.upstream = $0 }
            strings(tenant, "residency", path) { value.residency = $0 }
            enumeration(tenant, "geo_mode", path) { value.geoMode = $0 }
            integer(tenant, "quota_bytes", path) { value.quotaBytes = $0 }
            integer(tenant, "default_ttl_s", path) { value.defaultTTLSeconds = $0 }
            enumeration(tenant, "isolation", path) { value.isolation = $0 }
            string(tenant, "redis_url", path) { value.redisURL = $0 }
            boolean(tenant, "normalize_path", path) { value.normalizePath = $0 }
            integer(tenant, "quota_bytes_l2", path) { value.quotaBytesL2 = $0 }
            boolean(tenant, "share_cookie_requests", path) { value.shareCookieRequests = $0 }
            boolean(tenant, "server_timing", path) { value.serverTiming = $0 }
            number(tenant, "access_log_sample", path) { value.accessLogSample = $0 }
            if inBundle {
                value.wrappedKeys = readWrappedKeys(tenant["keys"], "\(path).keys")
                var sealedURL: String? = nil
                string(tenant, "redis_url_sealed", path) { sealedURL = $0 }
                if let sealedURL {
                    if let bytes = Data(base64Encoded: sealedURL), bytes.count > 28 {
                        value.sealedRedisURL = Array(bytes)
                    } else {
                        problems.append(
                            ConfigProblem("\(path).redis_url_sealed", "must be the base64 of nonce, sealed URL and tag")
                        )
                    }
                }
                var naming: String? = nil
                string(tenant, "naming_key", path) { naming = $0 }
                if let naming {
                    if let bytes = Data(base64Encoded: naming), bytes.count == 12 + 32 + 16 {
                        value.wrappedNamingKey = Array(bytes)
                    } else {
                        problems.append(
                            ConfigProblem(
                                "\(path).naming_key", "must be the base64 of nonce, 32-byte sealed key and tag"))
                    }
                }
            }
            config.tenants.append(value)
        }
    }

    /// A bundle tenant's `keys: [{version, wrapped}]`, `wrapped` in base64.
    private mutating func readWrappedKeys(_ node: Node?, _ path: String) -> [TenantConfig.WrappedKey] {
        var keys: [TenantConfig.WrappedKey] = []
        for (index, item) in sequence(node, path).enumerated() {
            let keyPath = "\(path)[\(index)]"
            guard let fields = mapping(item, keyPath, allowed: ["version", "wrapped"]) else { continue }
            var version = 0
            var wrapped: [UInt8]? = nil
            integer(fields, "version", keyPath) { version = $0 }
            string(fields, "wrapped", keyPath) { wrapped = Data(base64Encoded: $0).map(Array.init) }
            guard (1...Int(UInt32.max)).contains(version) else {
                problems.append(ConfigProblem("\(keyPath).version", "must be 1 or more"))
                continue
            }
            guard let wrapped, wrapped.count == 12 + 32 + 16 else {
                problems.append(
                    ConfigProblem("\(keyPath).wrapped", "must be the base64 of nonce, 32-byte sealed key and tag"))
                continue
            }
            if keys.contains(where: { $0.version == UInt32(version) }) {
                problems.append(ConfigProblem("\(keyPath).version", "\(version) appears twice"))
                continue
            }
            keys.append(TenantConfig.WrappedKey(version: UInt32(version), wrapped: wrapped))
        }
        return keys
    }

    private mutating func applyEnvironment(_ environment: [String: String], to config: inout EdgeConfig) {
        if let value = environment["TENANT_ISOLATION_LEVEL"] {
            if let level = EdgeConfig.IsolationLevel(rawValue: value.lowercased()) {
                config.security.isolationLevel = level
            } else {
                problems.append(ConfigProblem("TENANT_ISOLATION_LEVEL", "must be strict or standard, got '\(value)'"))
            }
        }
        for (name, apply) in [
            (
                "TENANT_ENCRYPTION_ENABLED",
                { (flag: Bool, config: inout EdgeConfig) in config.security.encryption = flag }
            ),
            ("TENANT_MONITORING_ENABLED", { (flag: Bool, config: inout EdgeConfig) in config.monitoring = flag }),
        ] {
            guard let value = environment[name] else { continue }
            switch value.lowercased() {
            case "true", "1", "yes", "on": apply(true, &config)
            case "false", "0", "no", "off": apply(false, &config)
            default: problems.append(ConfigProblem(name, "must be true or false, got '\(value)'"))
            }
        }
        if let value = environment["TENANT_CACHE_TTL"] {
            if let ttl = Int(value), ttl >= 0 {
                config.cache.defaultTTLSeconds = ttl
            } else {
                problems.append(ConfigProblem("TENANT_CACHE_TTL", "must be a whole number of seconds, got '\(value)'"))
            }
        }
    }
}
