import Foundation
import Synchronization
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative
import Yams

/// The origin's tenant registry and the signed bundles built from it, one per region.
/// Each tenant's data keys are generated here and kept only sealed, once per region KEK; a bundle
/// for a region carries that region's sealed form. Kept in the store (`OriginStore`): the
/// `registry` document (tenants, sealed keys, naming keys, the last bundle version) and one
/// `bundle/<region>` document per region (the signature line, then the exact body). Every change
/// re-reads the registry inside its write transaction, so replicas sharing a store never lose each
/// other's changes; reads come from the copy in memory, which each change here refreshes.
final class TenantRegistry: Sendable {
    let store: any OriginStore
    let regions: [RegionConfig]
    let signingKey: Ed25519Key?
    let clock: any CacheClock
    /// Region name → its KEK (`regions[].kek_file`), in memory only.
    let keks: [String: [UInt8]]
    /// The tenants of the config file: the registry's first content, before anything is stored.
    let initialTenants: [TenantConfig]
    private let state: Mutex<State>
    /// Each region's latest signed bundle, as stored.
    let bundles: Mutex<[String: (signature: String, body: [UInt8])]>

    struct State: Sendable {
        var tenants: [TenantConfig]
        var version: Int
        var keys: [String: [StoredKey]]
        /// Each tenant's naming key (digests; never rotates), sealed per region.
        var naming: [String: [String: [UInt8]]] = [:]
        /// The stored change this is (`RegistryFile.revision`).
        var revision = 0
    }

    /// Takes `next` unless the copy already holds a later change: writes finish in any order, and a
    /// copy must not go back to a registry an erasure or rotation already replaced.
    /// The version of the last bundle published (0 before the first).
    var publishedVersion: Int { state.withLock { $0.version } }

    func keep(_ next: State) {
        state.withLock { if next.revision >= $0.revision { $0 = next } }
    }

    /// Reads the stored registry (or starts one from the config's tenants), gives every tenant that
    /// has none its keys (stored at once), and loads the regions' bundles.
    static func open(config: OriginConfig, store: any OriginStore, clock: any CacheClock) async throws(EdgeError)
        -> TenantRegistry
    {
        let signingKey: Ed25519Key?
        if let path = config.signingKeyFile {
            guard let pem = FileManager.default.contents(atPath: path) else {
                throw EdgeError(.invalidConfig, "signing_key_file: cannot read \(path)")
            }
            signingKey = try Ed25519Key(pem: Array(pem), name: "signing_key_file")
            guard signingKey?.canSign == true else {
                throw EdgeError(.invalidConfig, "signing_key_file: a public key cannot sign bundles")
            }
        } else {
            signingKey = nil
        }
        var keks: [String: [UInt8]] = [:]
        for region in config.regions {
            if let path = region.kekFile {
                keks[region.region.name] = try StandaloneKeyring.readKeyFile(
                    path, key: "regions.\(region.region.name).kek_file")
            }
        }
        let registry = TenantRegistry(
            store: store, regions: config.regions.map(\.region), signingKey: signingKey, clock: clock, keks: keks,
            initialTenants: config.tenants)
        try await registry.update { _ throws(EdgeError) in }  // keys for tenants without them, stored
        try await registry.reloadBundles()
        return registry
    }

    private init(
        store: any OriginStore, regions: [RegionConfig], signingKey: Ed25519Key?, clock: any CacheClock,
        keks: [String: [UInt8]], initialTenants: [TenantConfig]
    ) {
        self.store = store
        self.regions = regions
        self.signingKey = signingKey
        self.clock = clock
        self.keks = keks
        self.initialTenants = initialTenants
        state = Mutex(State(tenants: initialTenants, version: 0, keys: [:]))
        bundles = Mutex([:])
    }

    /// Takes the stored registry and bundles as they are now.
    func reload() async throws(EdgeError) {
        let stored = try await store.documents([StoreDocument.registry])
        let loaded = try Self.decode(stored[StoreDocument.registry], initialTenants: initialTenants)
        keep(loaded)
        try await reloadBundles()
    }

    private func reloadBundles() async throws(EdgeError) {
        let stored = try await store.documents(regions.map { StoreDocument.bundle(region: $0.name) })
        var loaded: [String: (signature: String, body: [UInt8])] = [:]
        for region in regions {
            guard let text = stored[StoreDocument.bundle(region: region.name)] else { continue }
            let bytes = Array(text.utf8)
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { continue }
            loaded[region.name] = (String(decoding: bytes[..<newline], as: UTF8.self), Array(bytes[(newline + 1)...]))
        }
        bundles.withLock { $0 = loaded }
    }

    /// The registry as stored, or a new one of the config's tenants when nothing is stored yet.
    static func decode(_ document: String?, initialTenants: [TenantConfig]) throws(EdgeError) -> State {
        guard let document else { return State(tenants: initialTenants, version: 0, keys: [:]) }
        let file = try StableJSON.decode(RegistryFile.self, from: Array(document.utf8), what: "the stored registry")
        var state = State(tenants: [], version: file.version, keys: file.keys ?? [:])
        state.revision = file.revision ?? 0
        state.tenants = try file.tenants.map { item throws(EdgeError) in try Self.tenant(from: item, id: nil) }
        for (tenant, byRegion) in file.namingKeys ?? [:] {
            // A naming key that does not read is an error, never replaced: a new one would rename
            // every entry the nodes hold.
            for (region, text) in byRegion {
                guard let key = Data(base64Encoded: text) else {
                    throw EdgeError(.io, "the stored registry: naming key of '\(tenant)' for \(region) is not base64")
                }
                state.naming[tenant, default: [:]][region] = Array(key)
            }
        }
        return state
    }

    /// Gives a tenant its first data key and its naming key, if it has none yet.
    private static func ensureKeys(_ state: inout State, tenant: String, keks: [String: [UInt8]], at now: Double)
        throws(EdgeError)
    {
        if state.keys[tenant] == nil {
            state.keys[tenant] = [try makeKey(tenant: tenant, version: 1, keks: keks, at: now)]
        }
        if state.naming[tenant] == nil {
            var key = try OpenSSL.randomBytes(32)
            defer { KeyWrap.wipe(&key) }
            var wrapped: [String: [UInt8]] = [:]
            for (region, kek) in keks {
                wrapped[region] = try KeyWrap.seal(key, kek: kek, aad: KeyWrap.namingAAD(tenant: tenant))
            }
            state.naming[tenant] = wrapped
        }
    }

    /// A new random data key, sealed for every region with a KEK; the plain bytes are wiped.
    private static func makeKey(tenant: String, version: UInt32, keks: [String: [UInt8]], at now: Double)
        throws(EdgeError) -> StoredKey
    {
        var key = try OpenSSL.randomBytes(32)
        defer { KeyWrap.wipe(&key) }
        var wrapped: [String: [UInt8]] = [:]
        for (region, kek) in keks {
            wrapped[region] = try KeyWrap.seal(key, kek: kek, aad: KeyWrap.aad(tenant: tenant, version: version))
        }
        return StoredKey(version: version, createdAt: AuditChain.timestamp(now), wrapped: wrapped)
    }

    /// Removes a key version (crypto-shredding): after the next publish no node can open entries
    /// sealed under it. The only remaining version cannot be retired.
    func retireKey(id: String, version: UInt32) async throws(EdgeError) {
        try await update { state throws(EdgeError) in
            guard let keys = state.keys[id] else { throw EdgeError(.unknownTenant, "no tenant '\(id)'") }
            guard keys.contains(where: { $0.version == version }) else {
                throw EdgeError(.unknownTenant, "'\(id)' has no key version \(version)")
            }
            guard keys.count > 1 else {
                throw EdgeError(.badRequest, "version \(version) is the only key of '\(id)': rotate first")
            }
            state.keys[id] = keys.filter { $0.version != version }
        }
    }

    /// Adds the next key version of a tenant (rotation): it becomes current for new writes. The new version.
    func rotateKey(id: String) async throws(EdgeError) -> UInt32 {
        let (keks, now) = (self.keks, clock.now())
        return try await update { state throws(EdgeError) -> UInt32 in
            guard state.tenants.contains(where: { $0.id == id }) else {
                throw EdgeError(.unknownTenant, "no tenant '\(id)'")
            }
            let (next, overflow) = (state.keys[id]?.map(\.version).max() ?? 0).addingReportingOverflow(1)
            guard !overflow else { throw EdgeError(.badRequest, "'\(id)' has used every key version") }
            state.keys[id, default: []].append(try Self.makeKey(tenant: id, version: next, keks: keks, at: now))
            return next
        }
    }

    var tenants: [TenantConfig] { state.withLock { $0.tenants } }

    /// Per tenant, for the compliance report: its settings, its key versions with their creation
    /// times, and whether every region with a KEK holds its key (no key material).
    func keyReport() -> [(
        tenant: TenantConfig, keys: [(version: UInt32, createdAt: String)], sealedForAllRegions: Bool
    )] {
        let regions = Set(keks.keys)
        return state.withLock { state in
            state.tenants.map { tenant in
                let keys = state.keys[tenant.id] ?? []
                let complete = !regions.isEmpty && keys.allSatisfy { Set($0.wrapped.keys) == regions }
                return (tenant, keys.map { ($0.version, $0.createdAt) }, complete)
            }
        }
    }

    /// Key versions per tenant (no key material).
    func keyVersions(of id: String) -> [UInt32] { state.withLock { $0.keys[id]?.map(\.version) ?? [] } }

    /// Adds or replaces a tenant from its JSON (the fields of a node file's tenant); the id comes
    /// from the path and must match the body's when it has one.
    func put(id: String, json: [UInt8]) async throws(EdgeError) {
        guard let object = JSONValue.parse(json) else { throw EdgeError(.badRequest, "tenant: not valid JSON") }
        let tenant = try Self.tenant(from: object, id: id)
        try await update { state throws(EdgeError) in
            if let index = state.tenants.firstIndex(where: { $0.id == id }) {
                state.tenants[index] = tenant
            } else {
                state.tenants.append(tenant)
            }
        }
    }

    /// Removes a tenant and, in the same write, records its erasure request in the ledger and
    /// appends a purge of everything it had: all three happen or none. The purge's event, or nil
    /// when there was no such tenant (nothing is written then).
    func remove(id: String, erasureBy actor: String, ledger: ErasureLedger) async throws(EdgeError)
        -> InvalidationEvent?
    {
        let now = AuditChain.timestamp(clock.now())
        let initialTenants = self.initialTenants
        let (outcome, events) = try await store.write(
            reading: [StoreDocument.registry, StoreDocument.erasures], publishedAt: now
        ) { stored throws(EdgeError) -> (StoreWrite, (State, [String: ErasureLedger.Record])?) in
            var state = try Self.decode(stored[StoreDocument.registry], initialTenants: initialTenants)
            guard state.tenants.contains(where: { $0.id == id }) else { return (StoreWrite(), nil) }
            state.tenants.removeAll { $0.id == id }
            state.keys[id] = nil  // its keys are gone with it: crypto-shredding at the origin
            state.naming[id] = nil
            let erasures = try ErasureLedger.requesting(id, by: actor, at: now, in: stored[StoreDocument.erasures])
            let write = StoreWrite(
                documents: [
                    StoreDocument.registry: try Self.encode(&state), StoreDocument.erasures: erasures.document,
                ],
                purges: [PurgeRequest(tenant: id, all: true)])
            return (write, (state, erasures.records))
        }
        guard let (state, records) = outcome else { return nil }
        keep(state)
        ledger.committed(records)
        return events.first
    }

    /// Makes the next publish carry a version above `version` (a node runs a version this origin
    /// no longer remembers).
    func raiseVersion(toAtLeast version: Int) async throws(EdgeError) {
        guard (0...(1 << 53)).contains(version) else {
            throw EdgeError(.badRequest, "version \(version) is out of range")
        }
        try await update { state throws(EdgeError) in state.version = max(state.version, version) }
    }

    /// Applies a change to the registry as stored now and keeps it only if the whole registry is
    /// still what every node accepts (no host of two tenants, every tenant valid): a registry nodes
    /// refuse would stop every later bundle, erasures and key retirements included. Tenants without
    /// keys get theirs in the same write.
    @discardableResult
    private func update<Value: Sendable>(_ change: @escaping @Sendable (inout State) throws(EdgeError) -> Value)
        async throws(EdgeError) -> Value
    {
        let (keks, initialTenants, now) = (self.keks, self.initialTenants, clock.now())
        let (outcome, _) = try await store.write(reading: [StoreDocument.registry], publishedAt: "") {
            stored throws(EdgeError) -> (StoreWrite, (Value, State)) in
            var next = try Self.decode(stored[StoreDocument.registry], initialTenants: initialTenants)
            let value = try change(&next)
            for tenant in next.tenants { try Self.ensureKeys(&next, tenant: tenant.id, keks: keks, at: now) }
            // Checked as any node would, less what depends on the node's own file: no memory budget
            // to fit, but a Redis present, so a `database` tenant without its `redis_url` is refused.
            var whole = EdgeConfig()
            whole.node = .init(id: "origin", region: "origin")
            whole.security.masterKeyFile = "unused"
            whole.cache.memoryBytes = EdgeConfig.largestByteCount
            whole.cache.redis = .init(url: "redis://127.0.0.1:6379")
            whole.tenants = next.tenants
            let problems = whole.validate().filter { $0.key.hasPrefix("tenants") }
            guard problems.isEmpty else {
                throw EdgeError(.badRequest, problems.map(\.description).joined(separator: "\n"))
            }
            return (StoreWrite(documents: [StoreDocument.registry: try Self.encode(&next)]), (value, next))
        }
        keep(outcome.1)
        return outcome.0
    }

    /// The registry document. Nothing is stored unless it encoded: an empty registry must never
    /// replace the real one.
    /// Every write stores the next revision (`encode` is called once per write, on the state read in it).
    static func encode(_ state: inout State) throws(EdgeError) -> String {
        state.revision += 1
        let file = RegistryFile(
            version: state.version, tenants: state.tenants.map { .object(json($0)) }, keys: state.keys,
            namingKeys: state.naming.mapValues { $0.mapValues { Data($0).base64EncodedString() } },
            revision: state.revision)
        return String(decoding: try StableJSON.encode(file, what: "the registry"), as: UTF8.self)
    }
}

extension FileManager {
    func createDirectoryIfNeeded(_ path: String) throws(EdgeError) {
        do { try createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw EdgeError(.io, "cannot create \(path)")
        }
    }
}
