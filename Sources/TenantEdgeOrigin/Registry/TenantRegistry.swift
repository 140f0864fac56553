import Foundation
import Synchronization
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative
import Yams

/// The origin's tenant registry and the signed bundles built from it, one per region.
/// Each tenant's data keys are generated here and kept only sealed, once per region KEK; a bundle
/// for a region carries that region's sealed form. Persisted in `<state_dir>/registry.json`
/// (tenants, sealed keys and the last bundle version) and
/// `<state_dir>/bundles/<region>.signed` (the signature line, then the exact body), each written
/// durably, so a restarted origin serves the same bundles and keeps counting versions.
final class TenantRegistry: Sendable {
    private let directory: String
    private let regions: [RegionConfig]
    private let signingKey: Ed25519Key?
    private let clock: any CacheClock
    /// Region name → its KEK (`regions[].kek_file`), in memory only.
    private let keks: [String: [UInt8]]
    private let state: Mutex<State>

    private struct State {
        var tenants: [TenantConfig]
        var version: Int
        var keys: [String: [StoredKey]]
        /// Each tenant's naming key (digests; never rotates), sealed per region.
        var naming: [String: [String: [UInt8]]] = [:]
    }

    init(config: OriginConfig, clock: any CacheClock) throws(EdgeError) {
        directory = config.stateDir
        regions = config.regions.map(\.region)
        self.clock = clock
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
        self.keks = keks
        var state = State(tenants: config.tenants, version: 0, keys: [:])
        if let data = FileManager.default.contents(atPath: directory + "/registry.json") {
            let file = try StableJSON.decode(RegistryFile.self, from: Array(data), what: "\(directory)/registry.json")
            state.version = file.version
            state.tenants = try file.tenants.map { item throws(EdgeError) in try Self.tenant(from: item, id: nil) }
            state.keys = file.keys ?? [:]
            for (tenant, byRegion) in file.namingKeys ?? [:] {
                // A naming key that does not read is an error, never replaced: a new one would rename
                // every entry the nodes hold.
                for (region, text) in byRegion {
                    guard let key = Data(base64Encoded: text) else {
                        throw EdgeError(
                            .io, "\(directory)/registry.json: naming key of '\(tenant)' for \(region) is not base64")
                    }
                    state.naming[tenant, default: [:]][region] = Array(key)
                }
            }
        }
        for tenant in state.tenants { try Self.ensureKeys(&state, tenant: tenant.id, keks: keks, at: clock.now()) }
        self.state = Mutex(state)
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
    func retireKey(id: String, version: UInt32) throws(EdgeError) {
        try update { state throws(EdgeError) in
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
    func rotateKey(id: String) throws(EdgeError) -> UInt32 {
        try state.withLock { state throws(EdgeError) -> UInt32 in
            guard state.tenants.contains(where: { $0.id == id }) else {
                throw EdgeError(.unknownTenant, "no tenant '\(id)'")
            }
            let (next, overflow) = (state.keys[id]?.map(\.version).max() ?? 0).addingReportingOverflow(1)
            guard !overflow else { throw EdgeError(.badRequest, "'\(id)' has used every key version") }
            state.keys[id, default: []].append(try Self.makeKey(tenant: id, version: next, keks: keks, at: clock.now()))
            try Self.save(state, to: directory)
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
    func put(id: String, json: [UInt8]) throws(EdgeError) {
        guard let object = JSONValue.parse(json) else { throw EdgeError(.badRequest, "tenant: not valid JSON") }
        let tenant = try Self.tenant(from: object, id: id)
        let (keks, now) = (self.keks, clock.now())
        try update { state throws(EdgeError) in
            if let index = state.tenants.firstIndex(where: { $0.id == id }) {
                state.tenants[index] = tenant
            } else {
                state.tenants.append(tenant)
            }
            try Self.ensureKeys(&state, tenant: id, keks: keks, at: now)
        }
    }

    /// Removes a tenant; false when there was none.
    func remove(id: String) throws(EdgeError) -> Bool {
        var removed = false
        try update { state throws(EdgeError) in
            removed = state.tenants.contains { $0.id == id }
            state.tenants.removeAll { $0.id == id }
            state.keys[id] = nil  // its keys are gone with it: crypto-shredding at the origin
            state.naming[id] = nil
        }
        return removed
    }

    /// Builds, signs and stores the next bundle of every region; the new version and each region's
    /// signed bundle (signature header value, body).
    func publish() throws(EdgeError) -> (version: Int, bundles: [String: (signature: String, body: [UInt8])]) {
        guard let signingKey else {
            throw EdgeError(.invalidConfig, "signing_key_file: not set; the origin cannot sign bundles")
        }
        return try state.withLock { state throws(EdgeError) in
            let (version, overflow) = state.version.addingReportingOverflow(1)
            guard !overflow, version <= 1 << 53 else { throw EdgeError(.io, "the bundle version cannot count higher") }
            var bundles: [String: (String, [UInt8])] = [:]
            for region in regions {
                // A Redis URL may carry a password: sealed for the region when it has a KEK (a
                // sealing failure fails the publish rather than sending it in clear).
                var sealedURLs: [String: String] = [:]
                if let kek = keks[region.name] {
                    for tenant in state.tenants {
                        guard let url = tenant.redisURL else { continue }
                        let sealed = try KeyWrap.seal(
                            Array(url.utf8), kek: kek, aad: KeyWrap.redisURLAAD(tenant: tenant.id))
                        sealedURLs[tenant.id] = Data(sealed).base64EncodedString()
                    }
                }
                let tenants = state.tenants.map { tenant -> JSONValue in
                    var object = Self.json(tenant)
                    if let sealed = sealedURLs[tenant.id] {
                        object["redis_url"] = nil
                        object["redis_url_sealed"] = .string(sealed)
                    }
                    let keys = (state.keys[tenant.id] ?? []).compactMap { key in
                        key.wrapped[region.name].map { wrapped -> JSONValue in
                            .object([
                                "version": .integer(Int(key.version)),
                                "wrapped": .string(Data(wrapped).base64EncodedString()),
                            ])
                        }
                    }
                    if !keys.isEmpty { object["keys"] = .array(keys) }
                    if let naming = state.naming[tenant.id]?[region.name] {
                        object["naming_key"] = .string(Data(naming).base64EncodedString())
                    }
                    return .object(object)
                }
                let bundle = JSONValue.object([
                    "version": .integer(version), "issued_at": .string(AuditChain.timestamp(clock.now())),
                    "regions": .array(regions.map(Self.json)), "tenants": .array(tenants),
                ])
                let encoded: String
                do throws(EdgeError) { encoded = try bundle.canonicalText } catch {
                    throw EdgeError(.io, "the bundle for \(region.name) could not be encoded; nothing published")
                }
                let body = Array(encoded.utf8)
                let signature = "ed25519=" + Data(try signingKey.sign(body)).base64EncodedString()
                try FileManager.default.createDirectoryIfNeeded(directory + "/bundles")
                try DurableFile.write(
                    Array((signature + "\n").utf8) + body, to: "\(directory)/bundles/\(region.name).signed")
                bundles[region.name] = (signature, body)
            }
            state.version = version
            try Self.save(state, to: directory)
            return (version, bundles)
        }
    }

    /// The latest signed bundle of a region, as stored.
    func bundle(region: String) -> (signature: String, body: [UInt8])? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/bundles/\(region).signed"),
            let newline = data.firstIndex(of: UInt8(ascii: "\n"))
        else { return nil }
        return (String(decoding: data[..<newline], as: UTF8.self), Array(data[(newline + 1)...]))
    }

    /// Makes the next publish carry a version above `version` (a node runs a version this origin
    /// no longer remembers).
    func raiseVersion(toAtLeast version: Int) throws(EdgeError) {
        guard (0...(1 << 53)).contains(version) else {
            throw EdgeError(.badRequest, "version \(version) is out of range")
        }
        try update { state throws(EdgeError) in state.version = max(state.version, version) }
    }

    /// Applies a change and keeps it only if the whole registry is still what every node accepts
    /// (no host of two tenants, every tenant valid): a registry nodes refuse would stop every later
    /// bundle, erasures and key retirements included.
    private func update(_ change: (inout State) throws(EdgeError) -> Void) throws(EdgeError) {
        try state.withLock { state throws(EdgeError) in
            var next = state
            try change(&next)
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
            try Self.save(next, to: directory)
            state = next
        }
    }

    private static func save(_ state: State, to directory: String) throws(EdgeError) {
        try FileManager.default.createDirectoryIfNeeded(directory)
        let file = RegistryFile(
            version: state.version, tenants: state.tenants.map { .object(json($0)) }, keys: state.keys,
            namingKeys: state.naming.mapValues { $0.mapValues { Data($0).base64EncodedString() } })
        // Nothing is written unless it encoded: an empty registry must never replace the real one.
        try DurableFile.write(
            try StableJSON.encode(file, what: "\(directory)/registry.json: the registry"),
            to: directory + "/registry.json")
    }
}

extension FileManager {
    func createDirectoryIfNeeded(_ path: String) throws(EdgeError) {
        do { try createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw EdgeError(.io, "cannot create \(path)")
        }
    }
}
