/// `edge-origin`'s configuration (interface section 8), with documented defaults.
public struct OriginConfig: Sendable, Equatable {
    /// HTTPS listener, `HOST:PORT`.
    public var listen: String = "127.0.0.1:8443"
    /// Server certificate chain and key (PEM). The origin speaks HTTPS only.
    public var certFile: String = ""
    public var keyFile: String = ""
    /// Durable invalidation log, tenant registry and bundles.
    public var stateDir: String = "./origin-state"
    /// Ed25519 private key (PEM) that signs config bundles.
    public var signingKeyFile: String? = nil
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
            self.region = region; self.kekFile = kekFile; self.nodes = nodes
        }
    }

    public struct Node: Sendable, Equatable {
        public var id: String
        public var adminURL: String
        public var adminTokenFile: String
        public init(id: String, adminURL: String, adminTokenFile: String) {
            self.id = id; self.adminURL = adminURL; self.adminTokenFile = adminTokenFile
        }
    }

    public init() {}

    /// Every problem, naming its key.
    public func validate() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func check(_ ok: Bool, _ key: String, _ reason: String) { if !ok { problems.append(ConfigProblem(key, reason)) } }
        check(HostPort(parsing: listen) != nil, "listen", "must be HOST:PORT")
        check(!certFile.isEmpty, "tls.cert_file", "is required: the origin speaks HTTPS only")
        check(!keyFile.isEmpty, "tls.key_file", "is required: the origin speaks HTTPS only")
        check(!stateDir.isEmpty, "state_dir", "must not be empty")
        check(logRetentionEvents >= 1, "log_retention_events", "must be 1 or more")
        var names = Set<String>()
        for (index, region) in regions.enumerated() {
            check(!region.region.name.isEmpty, "regions[\(index)].name", "must not be empty")
            check(names.insert(region.region.name).inserted, "regions[\(index)].name", "'\(region.region.name)' appears twice")
        }
        for (index, node) in tokens.nodes.enumerated() {
            check(names.contains(node.region), "tokens.nodes[\(index)].region", "'\(node.region)' is not a region of this origin")
        }
        return problems
    }
}
