/// The origin's compliance report (`GET /v1/report/compliance`), as the origin writes it and
/// `edgectl report compliance` reads it: per tenant, encryption, key versions and their ages,
/// residency and the last purge; every erasure with who asked and each node's confirmation; and
/// whether the origin's audit chain verifies. Nothing secret: no key material, no token.
public struct ComplianceReport: Codable, Sendable {
    public struct Tenant: Codable, Sendable {
        public var id: String
        public var encrypted: Bool
        public var residency: [String]
        public var keyVersions: [KeyVersion]
        public var lastPurge: LastPurge?

        enum CodingKeys: String, CodingKey {
            case id, encrypted, residency
            case keyVersions = "key_versions"
            case lastPurge = "last_purge"
        }

        public init(id: String, encrypted: Bool, residency: [String], keyVersions: [KeyVersion], lastPurge: LastPurge?)
        {
            self.id = id
            self.encrypted = encrypted
            self.residency = residency
            self.keyVersions = keyVersions
            self.lastPurge = lastPurge
        }
    }

    public struct KeyVersion: Codable, Sendable {
        public var version: UInt32
        public var createdAt: String
        public var ageDays: Int

        enum CodingKeys: String, CodingKey {
            case version
            case createdAt = "created_at"
            case ageDays = "age_days"
        }

        public init(version: UInt32, createdAt: String, ageDays: Int) {
            self.version = version
            self.createdAt = createdAt
            self.ageDays = ageDays
        }
    }

    public struct LastPurge: Codable, Sendable {
        public var seq: Int
        public var publishedAt: String

        enum CodingKeys: String, CodingKey {
            case seq
            case publishedAt = "published_at"
        }

        public init(seq: Int, publishedAt: String) {
            self.seq = seq
            self.publishedAt = publishedAt
        }
    }

    /// `{"valid":true,"entries":N}` or `{"valid":false,"line":N,"reason":…}`.
    public struct Chain: Codable, Sendable {
        public var valid: Bool
        public var entries: Int?
        public var line: Int?
        public var reason: String?

        public init(valid: Bool, entries: Int? = nil, line: Int? = nil, reason: String? = nil) {
            self.valid = valid
            self.entries = entries
            self.line = line
            self.reason = reason
        }
    }

    public var generatedAt: String
    public var tenants: [Tenant]
    public var erasures: [ErasureRecord]
    public var auditChain: Chain

    enum CodingKeys: String, CodingKey {
        case tenants, erasures
        case generatedAt = "generated_at"
        case auditChain = "audit_chain"
    }

    public init(generatedAt: String, tenants: [Tenant], erasures: [ErasureRecord], auditChain: Chain) {
        self.generatedAt = generatedAt
        self.tenants = tenants
        self.erasures = erasures
        self.auditChain = auditChain
    }
}

/// One tenant's erasure: asked for by `requestedBy` at `requestedAt`; node id → when it confirmed.
public struct ErasureRecord: Codable, Equatable, Sendable {
    /// Set when the record is listed (the origin's ledger file keys records by tenant).
    public var tenant: String?
    public var requestedAt: String
    public var requestedBy: String
    public var confirmed: [String: String]

    enum CodingKeys: String, CodingKey {
        case tenant, confirmed
        case requestedAt = "requested_at"
        case requestedBy = "requested_by"
    }

    public init(tenant: String? = nil, requestedAt: String, requestedBy: String, confirmed: [String: String]) {
        self.tenant = tenant
        self.requestedAt = requestedAt
        self.requestedBy = requestedBy
        self.confirmed = confirmed
    }
}
