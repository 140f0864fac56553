import Foundation

/// One thing wrong with a configuration: the dotted key it is at and why, in one line.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public init(_ key: String, _ reason: String) {
        self.key = key
        self.reason = reason
    }
    public var description: String { "\(key): \(reason)" }
}

extension EdgeConfig {
    /// Every problem in the configuration at once, so an operator fixes them in one round.
    /// An empty list means the configuration can be applied whole.
    public func validate() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func check(_ ok: Bool, _ key: String, _ reason: @autoclosure () -> String) {
            if !ok { problems.append(ConfigProblem(key, reason())) }
        }
        if let endpoint = tracing.otlpEndpoint {
            let parsed = URLComponents(string: endpoint)
            check(
                parsed?.host?.isEmpty == false && ["http", "https"].contains(parsed?.scheme ?? ""),
                "tracing.otlp_endpoint", "must be an http:// or https:// URL")
        }
        check((0...1).contains(tracing.sampleRatio), "tracing.sample_ratio", "must be from 0 to 1")
        check((1...128).contains(tracing.serviceName.count), "tracing.service_name", "must be 1 to 128 characters")

        check(
            Self.isIdentifier(node.id), "node.id", "must be 1-63 of a-z, 0-9, '-', '_' starting with a letter or digit")
        check(Self.isRegionName(node.region), "node.region", Self.regionNameRule)
        let http = HostPort(parsing: listen.http)
        let admin = HostPort(parsing: listen.admin)
        check(http != nil, "listen.http", "must be HOST:PORT with a port from 0 to 65535, got '\(listen.http)'")
        check(admin != nil, "listen.admin", "must be HOST:PORT with a port from 0 to 65535, got '\(listen.admin)'")
        if let http, let admin, http.port != 0 {
            check(
                http != admin, "listen.admin", "must differ from listen.http: tenant traffic and admin are never mixed")
        }
        check(!stateDir.isEmpty, "state_dir", "must not be empty")
        check(
            (listen.adminCertFile == nil) == (listen.adminKeyFile == nil), "listen.admin_tls",
            "needs both cert_file and key_file")

        check(
            (1...Self.largestByteCount).contains(cache.memoryBytes), "cache.memory_bytes",
            "must be from 1 to \(Self.largestByteCount)")
        check(
            (0...Self.longestTTLSeconds).contains(cache.defaultTTLSeconds), "cache.default_ttl_s",
            "must be from 0 to \(Self.longestTTLSeconds)")
        if let redis = cache.redis {
            if let sentinel = redis.sentinel {
                check(redis.url.isEmpty, "cache.redis.url", "is not used with cache.redis.sentinel: set one of them")
                check(
                    (1...RedisSentinelConfig.maxAddresses).contains(sentinel.addresses.count),
                    "cache.redis.sentinel.addresses", "must list 1 to \(RedisSentinelConfig.maxAddresses) sentinels")
                for address in sentinel.addresses where !RedisSentinelConfig.isValidAddress(address) {
                    problems.append(
                        ConfigProblem("cache.redis.sentinel.addresses", "'\(address.prefix(80))' is not host:port"))
                }
                check(
                    RedisSentinelConfig.isValidMaster(sentinel.master), "cache.redis.sentinel.master",
                    "must be 1 to 64 letters, digits, '.', '-' or '_'")
                check(
                    (0..<65_536).contains(sentinel.database), "cache.redis.sentinel.database",
                    "must be from 0 to 65535")
            } else {
                check(
                    RedisEndpoint(parsing: redis.url) != nil, "cache.redis.url",
                    "must be redis://[user:password@]host[:port][/db]")
            }
            check((1...1024).contains(redis.poolSize), "cache.redis.pool_size", "must be from 1 to 1024")
            check((1...60_000).contains(redis.timeoutMs), "cache.redis.timeout_ms", "must be from 1 to 60000")
            check(
                (1...Self.largestByteCount).contains(redis.tenantQuotaBytes), "cache.redis.tenant_quota_bytes",
                "must be from 1 to \(Self.largestByteCount)")
        }

        if security.isolationLevel == .strict && !security.encryption {
            problems.append(
                ConfigProblem(
                    "security.encryption",
                    "false is refused under security.isolation_level: strict (use standard to turn encryption off)"))
        }
        if security.encryption && origin == nil && (security.masterKeyFile ?? "").isEmpty {
            problems.append(
                ConfigProblem(
                    "security.master_key_file",
                    "is required in standalone mode with encryption on: tenant keys are derived from it"))
        }
        if let origin {
            if origin.urls.isEmpty {
                check(origin.url.hasPrefix("https://"), "origin.url", "must start with https://")
            } else {
                check(origin.url.isEmpty, "origin.url", "is not used with origin.urls: set one of them")
                check((1...16).contains(origin.urls.count), "origin.urls", "must list 1 to 16 origin replicas")
                for (index, url) in origin.urls.enumerated() where !url.hasPrefix("https://") {
                    problems.append(ConfigProblem("origin.urls[\(index)]", "must start with https://"))
                }
            }
            check((1...60).contains(origin.pollWaitSeconds), "origin.poll_wait_s", "must be from 1 to 60")
            check(
                (1...Self.longestTTLSeconds).contains(origin.maxInvalidationLagSeconds),
                "origin.max_invalidation_lag_s",
                "must be from 1 to \(Self.longestTTLSeconds)")
        }
        check((0...86_400).contains(geoip.watchIntervalSeconds), "geoip.watch_interval_s", "must be from 0 to 86400")
        check((0...86_400).contains(geoip.probeIntervalSeconds), "geoip.probe_interval_s", "must be from 0 to 86400")
        check(
            (2...(1 << 24)).contains(geoip.decisionCacheEntries), "geoip.decision_cache_entries",
            "must be from 2 to 16777216")
        for (index, proxy) in geoip.trustedProxies.enumerated() {
            check(
                IPNetwork(proxy.trimmingCharacters(in: .whitespaces)) != nil,
                "geoip.trusted_proxies[\(index)]", "must be an address or CIDR, got '\(proxy)'")
        }

        // Upper bounds too: these values are added, multiplied and turned into deadlines, and a value
        // near Int.max would overflow (a trap) where a sane one cannot.
        func bounded(_ value: Int, _ range: ClosedRange<Int>, _ key: String) {
            check(range.contains(value), "limits.\(key)", "must be from \(range.lowerBound) to \(range.upperBound)")
        }
        bounded(limits.maxHeaderBytes, 1024...(1 << 20), "max_header_bytes")
        bounded(limits.maxRequestBodyBytes, 0...(1 << 30), "max_request_body_bytes")
        bounded(limits.maxResponseBodyBytes, 1024...(1 << 30), "max_response_body_bytes")
        bounded(limits.upstreamConnectTimeoutMs, 1...3_600_000, "upstream_connect_timeout_ms")
        bounded(limits.upstreamReadTimeoutMs, 1...3_600_000, "upstream_read_timeout_ms")
        bounded(limits.upstreamPoolSize, 1...100_000, "upstream_pool_size")
        bounded(limits.drainSeconds, 0...3600, "drain_s")
        bounded(limits.maxTargetBytes, 256...(1 << 20), "max_target_bytes")
        bounded(limits.headerTimeoutMs, 1...3_600_000, "header_timeout_ms")
        bounded(limits.idleTimeoutSeconds, 1...86_400, "idle_timeout_s")
        bounded(limits.maxConnections, 1...1_000_000, "max_connections")
        bounded(limits.maxPipelinedRequests, 1...1024, "max_pipelined_requests")

        var regionNames = Set<String>()
        for (index, region) in regions.enumerated() {
            let key = "regions[\(index)]"
            check(Self.isRegionName(region.name), "\(key).name", Self.regionNameRule)
            check(regionNames.insert(region.name).inserted, "\(key).name", "'\(region.name)' appears twice")
            check((-90...90).contains(region.lat), "\(key).lat", "must be from -90 to 90")
            check((-180...180).contains(region.lon), "\(key).lon", "must be from -180 to 180")
            check(
                region.publicURL.hasPrefix("http://") || region.publicURL.hasPrefix("https://"),
                "\(key).public_url", "must be an http:// or https:// URL")
        }

        problems += validateTenants()
        return problems
    }

    private func validateTenants() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        var ids = Set<String>()
        var hostOwners: [String: String] = [:]
        var quotaSum = 0
        for (index, tenant) in tenants.enumerated() {
            let key = "tenants[\(index)]"
            if !Self.isIdentifier(tenant.id) {
                problems.append(
                    ConfigProblem(
                        "\(key).id",
                        "must be 1-63 of a-z, 0-9, '-', '_' starting with a letter or digit, got '\(tenant.id)'"))
            } else if !ids.insert(tenant.id).inserted {
                problems.append(ConfigProblem("\(key).id", "'\(tenant.id)' appears twice"))
            }
            if tenant.hosts.isEmpty {
                problems.append(ConfigProblem("\(key).hosts", "must list at least one hostname"))
            }
            for (hostIndex, host) in tenant.hosts.enumerated() {
                let normalized = TenantDirectory.normalize(host: host)
                if normalized.isEmpty || normalized.contains(" ") || normalized.contains("/") {
                    problems.append(ConfigProblem("\(key).hosts[\(hostIndex)]", "'\(host)' is not a hostname"))
                } else if let owner = hostOwners[normalized] {
                    problems.append(
                        ConfigProblem("\(key).hosts[\(hostIndex)]", "'\(host)' already belongs to tenant '\(owner)'"))
                } else {
                    hostOwners[normalized] = tenant.id
                }
            }
            if UpstreamURL(parsing: tenant.upstream) == nil {
                problems.append(
                    ConfigProblem(
                        "\(key).upstream",
                        "must be http://HOST[:PORT] or https://HOST[:PORT] with an optional path, "
                            + "got '\(tenant.upstream)'"
                    ))
            }
            if let quota = tenant.quotaBytes {
                if !(1...Self.largestByteCount).contains(quota) {
                    problems.append(ConfigProblem("\(key).quota_bytes", "must be from 1 to \(Self.largestByteCount)"))
                }
                quotaSum = Int.saturatingSum(quotaSum, max(quota, 0))
            }
            if !(0...1).contains(tenant.accessLogSample) {
                problems.append(ConfigProblem("\(key).access_log_sample", "must be from 0 to 1"))
            }
            if let quota = tenant.quotaBytesL2, !(1...Self.largestByteCount).contains(quota) {
                problems.append(ConfigProblem("\(key).quota_bytes_l2", "must be from 1 to \(Self.largestByteCount)"))
            }
            if let url = tenant.redisURL, RedisEndpoint(parsing: url) == nil {
                problems.append(ConfigProblem("\(key).redis_url", "must be redis://[user:password@]host[:port][/db]"))
            }
            if cache.redis != nil, isolation(of: tenant) == .database, tenant.redisURL == nil,
                tenant.sealedRedisURL == nil
            {
                problems.append(
                    ConfigProblem(
                        "\(key).redis_url",
                        "is required: the tenant's L2 strategy is database (a Redis database of its own)"))
            }
            if let ttl = tenant.defaultTTLSeconds, !(0...Self.longestTTLSeconds).contains(ttl) {
                problems.append(ConfigProblem("\(key).default_ttl_s", "must be from 0 to \(Self.longestTTLSeconds)"))
            }
        }
        if quotaSum > cache.memoryBytes {
            problems.append(
                ConfigProblem(
                    "tenants", "quota_bytes add up to \(quotaSum), more than cache.memory_bytes \(cache.memoryBytes)"))
        }
        return problems
    }

    /// Each tenant's L1 byte quota: its own `quota_bytes`, or an equal share of what the explicit quotas
    /// leave of `memory_bytes`. Quotas never add up to more than the budget, which is what lets eviction
    /// stay inside the tenant that overflows.
    public func effectiveQuotas() -> [String: Int] {
        let explicit = tenants.compactMap(\.quotaBytes).reduce(0, Int.saturatingSum)
        let implicitCount = tenants.filter { $0.quotaBytes == nil }.count
        let share = implicitCount == 0 ? 0 : max(cache.memoryBytes - explicit, 0) / implicitCount
        var quotas: [String: Int] = [:]
        for tenant in tenants { quotas[tenant.id] = tenant.quotaBytes ?? share }
        return quotas
    }

    /// Largest byte count a config may give (1 PiB): far beyond any machine, far below overflow.
    public static let largestByteCount = 1 << 50
    /// Longest TTL or lag a config may give (10 years).
    public static let longestTTLSeconds = 315_360_000

    static let regionNameRule = "must be 1 to 63 letters, digits, '.', '-' or '_'"

    /// A region's name is sent in `X-Edge-Region` and `X-Edge-Preferred-Region` as it is, so it
    /// must be a header-safe token.
    public static func isRegionName(_ value: String) -> Bool {
        (1...63).contains(value.utf8.count)
            && value.utf8.allSatisfy { byte in
                (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                    || byte == 0x2D || byte == 0x5F || byte == 0x2E
            }
    }

    public static func isIdentifier(_ value: String) -> Bool {
        guard (1...63).contains(value.utf8.count), let first = value.utf8.first else { return false }
        func allowed(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
        }
        return allowed(first) && first != 0x2D && first != 0x5F && value.utf8.allSatisfy(allowed)
    }
}

/// A `HOST:PORT` listen address; IPv6 hosts are written `[::1]:8080`.
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}

/// A tenant upstream: scheme, host, port and a base path that request paths are appended to.
public struct UpstreamURL: Sendable, Equatable {
    public var secure: Bool
    public var host: String
    public var port: Int
    public var basePath: String

    public init?(parsing text: String) {
        let rest: Substring
        if text.hasPrefix("http://") {
            secure = false
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            secure = true
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        if path.hasSuffix("/") { path.removeLast() }
        basePath = path
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains("?") else { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = secure ? 443 : 80
            } else if after.hasPrefix(":"), let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) {
                port = parsed
            } else {
                return nil
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = String(authority[..<colon])
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else {
                return nil
            }
            port = parsed
        } else {
            host = String(authority)
            port = secure ? 443 : 80
        }
        guard !host.isEmpty else { return nil }
    }

    /// `scheme://host:port` with the base path, ready to have a request target appended.
    public var base: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(secure ? "https" : "http")://\(hostPart):\(port)\(basePath)"
    }
}
