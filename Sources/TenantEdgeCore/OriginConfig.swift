/// `edge-origin`'s configuration (docs/origin.md), with documented defaults.
public struct OriginConfig: Sendable, Equatable {
    /// HTTPS listener, `HOST:PORT`.
    public var listen: String = "127.0.0.1:8443"
    /// `logging.format` (`text` or `json`) and `logging.level`.
    public var logging = LogSettings()
    /// Server certificate chain and key (PEM). The origin speaks HTTPS only.
    public var certFile: String = ""
    public var keyFile: String = ""
    /// CA (PEM) that signed the nodes' admin certificates, for pushes to `https://` admin URLs;
    /// default: the system's trust roots.
    public var nodeCAFile: String? = nil
    /// Durable invalidation log, tenant registry and bundles.
    public var stateDir: String = "./origin-state"
    /// Ed25519 private key (PEM) that signs config bundles.
    public var signingKeyFile: String? = nil
    /// Where the registry, keys, erasure ledger, bundles and log live: SQLite in `state_dir` by
    /// default, or PostgreSQL (`storage.postgres`) for several replicas.
    public var storage: OriginStorage = .embedded
    /// Events kept for feeds; a cursor older than the window gets `410`. Default 100,000.
    public var logRetentionEvents: Int = 100_000
    public var tokens = Tokens()
    public var regions: [Region] = []
    public var tenants: [TenantConfig] = []

    public struct Tokens: Sendable, Equatable {
        /// SHA-256 digests of bearer tokens, by role.
        public var admin: [[UInt8]] = []
        public var publishers: [(sha256: [UInt8], tenants: [String])] = []
        /// Node tokens: bound to a region, and to one node id when `node` is set. Only a token bound
        /// to a node may confirm that node's erasures, so the evidence cannot be forged by a sibling.
        public var nodes: [(sha256: [UInt8], region: String, node: String?)] = []
        public init() {}

        public static func == (a: Tokens, b: Tokens) -> Bool {
            a.admin == b.admin && a.publishers.map(\.sha256) == b.publishers.map(\.sha256)
                && a.publishers.map(\.tenants) == b.publishers.map(\.tenants)
                && a.nodes.map(\.sha256) == b.nodes.map(\.sha256) && a.nodes.map(\.region) == b.nodes.map(\.region)
                && a.nodes.map(\.node) == b.nodes.map(\.node)
        }
    }

    public struct Region: Sendable, Equatable {
        public var region: RegionConfig
        public var kekFile: String?
        public var nodes: [Node]
        public init(region: RegionConfig, kekFile: String? = nil, nodes: [Node] = []) {
            self.region = region
            self.kekFile = kekFile
            self.nodes = nodes
        }
    }

    public struct Node: Sendable, Equatable {
        public var id: String
        public var adminURL: String
        public var adminTokenFile: String
        public init(id: String, adminURL: String, adminTokenFile: String) {
            self.id = id
            self.adminURL = adminURL
            self.adminTokenFile = adminTokenFile
        }
    }

    public init() {}

    /// `http://127.x.x.x…`, `http://[::1]…` or `http://localhost…`.
    static func isLoopbackURL(_ url: String) -> Bool {
        guard url.hasPrefix("http://") else { return false }
        let authority = url.dropFirst(7).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { return false }  // `127.0.0.1:1@evil.example` is evil.example
        let host =
            authority.hasPrefix("[")
            ? String(authority.prefix { $0 != "]" }) + "]" : String(authority.prefix { $0 != ":" })
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let isLoopbackIPv4 =
            octets.count == 4 && octets.first == "127"
            && octets.allSatisfy { octet in
                (1...3).contains(octet.count) && octet.allSatisfy { ("0"..."9").contains($0) }
                    && (Int(octet) ?? 256) <= 255
            }
        return host == "localhost" || host == "[::1]" || isLoopbackIPv4
    }

    /// Every problem, naming its key.
    public func validate() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func check(_ ok: Bool, _ key: String, _ reason: String) {
            if !ok { problems.append(ConfigProblem(key, reason)) }
        }
        check(HostPort(parsing: listen) != nil, "listen", "must be HOST:PORT")
        check(!certFile.isEmpty, "tls.cert_file", "is required: the origin speaks HTTPS only")
        check(!keyFile.isEmpty, "tls.key_file", "is required: the origin speaks HTTPS only")
        check(!stateDir.isEmpty, "state_dir", "must not be empty")
        check(logRetentionEvents >= 1, "log_retention_events", "must be 1 or more")
        if case .postgres(let postgres) = storage {
            check(
                PostgresEndpoint(parsing: postgres.url) != nil, "storage.postgres.url",
                "must be postgres://user[:password]@host[:port]/database")
            // One connection listens for the other replicas' commits for as long as the origin runs.
            check((2...256).contains(postgres.poolSize), "storage.postgres.pool_size", "must be from 2 to 256")
        }
        var names = Set<String>()
        for (index, region) in regions.enumerated() {
            // sent in every bundle, where each node checks it the same way
            check(
                EdgeConfig.isRegionName(region.region.name), "regions[\(index)].name", EdgeConfig.regionNameRule)
            check(
                names.insert(region.region.name).inserted, "regions[\(index)].name",
                "'\(region.region.name)' appears twice")
        }
        var nodeIDs: Set<String> = []
        for (regionIndex, region) in regions.enumerated() {
            for (index, node) in region.nodes.enumerated() {
                // Node ids name a node across the fleet (pushes, erasure confirmations, dashboards).
                check(
                    EdgeConfig.isIdentifier(node.id), "regions[\(regionIndex)].nodes[\(index)].id",
                    "must be 1-63 of a-z, 0-9, '-', '_' starting with a letter or digit")
                check(
                    nodeIDs.insert(node.id).inserted, "regions[\(regionIndex)].nodes[\(index)].id",
                    "'\(node.id)' appears twice")
                // A push carries the region's bundle and the node's admin token: never in clear
                // beyond this machine.
                let https =
                    node.adminURL.hasPrefix("https://")
                    && !node.adminURL.dropFirst(8).prefix { $0 != "/" }.contains("@")
                check(
                    https || Self.isLoopbackURL(node.adminURL),
                    "regions[\(regionIndex)].nodes[\(index)].admin_url",
                    "must be https:// without user info (plain http only on loopback)")
            }
        }
        for (index, node) in tokens.nodes.enumerated() {
            check(
                names.contains(node.region), "tokens.nodes[\(index)].region",
                "'\(node.region)' is not a region of this origin")
        }
        return problems
    }
}
