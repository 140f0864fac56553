import Synchronization

/// A tenant's L1 cache: its partition behind a lock, its cipher, and the derivation of every
/// digest from the tenant key. Tenants never share a lock, so the cache is sharded by tenant.
public final class TenantCache: Sendable {
    public let tenant: TenantConfig
    public let cipher: any TenantCipher
    /// Kept with the partition, so a cache rebuilt over the same entries (a key rotation) keeps counting.
    public var counters: TenantCounters { storage.counters }
    /// The tenant's upstream has a base path (`https://shared/tenant-a`), so targets are checked
    /// to stay under it (`RequestTarget.staysUnderBasePath`). Worked out once, not per request.
    public let upstreamHasBasePath: Bool
    /// `tenant.canonicalHost`, worked out once: every request compares its `Host` with it.
    public let canonicalHost: String
    /// `te:<tenant>:http:`, the start of every entry's associated data (`EntryBinding`).
    private let aadPrefix: [UInt8]
    private let storage: PartitionStorage
    /// Directory → digests of its prefixes, per lane (`prefixDigests(of:)`); a new key set starts empty.
    let prefixDigestMemo = LaneLocal<PrefixDigestMemo>()
    /// The last target whose primary digest this lane computed, with the digest.
    let lastPrimaryDigest = LaneLocal<(target: String, digest: KeyDigest?)>()

    /// The partition, by reference, so a new key set can take over the entries of the old one.
    private final class PartitionStorage: Sendable {
        let partition: Mutex<TenantPartition>  // protects every entry and index of this tenant
        let counters = TenantCounters()
        /// Purges applied to this partition, counted under its lock: a miss notes the count before it
        /// fetches, and its answer is not put into L1 when a purge ran meanwhile (the answer may be
        /// what the purge meant to remove; L2's write script refuses it by the fence the same way).
        let purges = Atomic<UInt64>(0)
        /// The partition's quota, readable without its lock.
        let quotaBytes: Int
        init(quotaBytes: Int) {
            partition = Mutex(TenantPartition(quotaBytes: quotaBytes))
            self.quotaBytes = quotaBytes
        }
    }

    public convenience init(tenant: TenantConfig, cipher: any TenantCipher, quotaBytes: Int) {
        self.init(tenant: tenant, cipher: cipher, storage: PartitionStorage(quotaBytes: quotaBytes))
    }

    /// Takes over `previous`'s entries under new settings or keys (a rotation, say), which is only
    /// right when the digests are the same: the caller checks `sameNames(as:)`.
    public convenience init(tenant: TenantConfig, cipher: any TenantCipher, continuing previous: TenantCache) {
        self.init(tenant: tenant, cipher: cipher, storage: previous.storage)
    }

    private init(tenant: TenantConfig, cipher: any TenantCipher, storage: PartitionStorage) {
        self.tenant = tenant
        self.cipher = cipher
        self.storage = storage
        upstreamHasBasePath = !(UpstreamURL(parsing: tenant.upstream)?.basePath.isEmpty ?? true)
        aadPrefix = EntryBinding.prefix(tenant: tenant.id)
        canonicalHost = tenant.canonicalHost
    }

    /// Whether this cache names entries as `other` does (same naming key), so entries carry over.
    public func sameNames(as other: TenantCache) -> Bool {
        primaryDigest(target: "\u{0}probe") == other.primaryDigest(target: "\u{0}probe")
    }

    // MARK: lookup and store

    /// The stored entry for a request, if any, with the storage digest it was sealed under.
    /// `requestHeaders` is evaluated only when the stored response varies on request headers, so
    /// the common hit converts no headers at all.
    public func lookup(target: String, requestHeaders: @autoclosure () -> [HeaderField]) -> (
        storageKey: KeyDigest, entry: CacheEntry
    )? {
        let primary = primaryDigest(target: target)
        let found = storage.partition.withLock { $0.lookup(primary: primary) }
        switch found {
        case .miss: return nil
        case .found(let entry): return (primary, entry)
        case .needsVariant(let varyNames):
            let storageKey = variantDigest(target: target, varyNames: varyNames, requestHeaders: requestHeaders())
            return storage.partition.withLock { $0.entry(storageKey: storageKey) }.map { (storageKey, $0) }
        }
    }

    /// What `store` sealed, for writing the same bytes to L2, and whether L1 kept it.
    public struct Stored: Sendable {
        public var storageKey: KeyDigest
        public var entry: CacheEntry
        /// False when the entry is larger than the tenant's whole L1 quota (L2 may still take it).
        public var inL1: Bool
    }

    /// How many purges this tenant's L1 has seen; note it before a fetch, pass it to `store`/`promote`.
    public var purgeCount: UInt64 { storage.purges.load(ordering: .acquiring) }

    /// Seals and stores a response in L1 (when it fits the tenant's quota at all). `generation`:
    /// the tenant's L2 generation read before the fetch (0 without L2). `unpurgedSince`: the
    /// `purgeCount` noted before the fetch; when a purge ran since, L1 keeps nothing (`inL1` false).
    @discardableResult
    public func store(
        target: String, requestHeaders: [HeaderField], record: ResponseRecord, varyNames: [String],
        tags: [String], lifetime: StoragePolicy.Lifetime, responseTime: Double, generation: UInt64 = 0,
        unpurgedSince: UInt64? = nil
    ) throws(EdgeError) -> Stored {
        let primary = primaryDigest(target: target)
        let storageKey =
            varyNames.isEmpty
            ? primary : variantDigest(target: target, varyNames: varyNames, requestHeaders: requestHeaders)
        let entry = try seal(
            record, storageKey: storageKey, lifetime: lifetime, tagDigests: tags.map(tagDigest),
            responseTime: responseTime, generation: generation)
        let prefixes = indexedPrefixes(of: target)
        let inserted = storage.partition.withLock { [storage] partition in
            if let unpurgedSince, storage.purges.load(ordering: .relaxed) != unpurgedSince { return false }
            return partition.insert(
                entry, primary: primary, storageKey: storageKey, varyNames: varyNames, prefixDigests: prefixes.digests,
                directoryPrefixes: prefixes.directoryCount)
        }
        return Stored(storageKey: storageKey, entry: entry, inL1: inserted)
    }

    /// Puts an entry found in L2 (already sealed, bound to `storageKey`) into L1, as it is (no
    /// re-seal). `primary`: the target's primary digest when the caller has it already. An entry
    /// larger than the whole quota is refused before its index digests are made: with an L1 too
    /// small for it, every L2 hit of it would otherwise pay three HMACs for nothing.
    @discardableResult
    public func promote(
        _ entry: CacheEntry, target: String, storageKey: KeyDigest, varyNames: [String], primary: KeyDigest? = nil,
        unpurgedSince: UInt64? = nil
    ) -> Bool {
        guard entry.chargedBytes <= storage.quotaBytes else { return false }
        let primary = primary ?? primaryDigest(target: target)
        let prefixes = indexedPrefixes(of: target)
        return storage.partition.withLock { [storage] partition in
            if let unpurgedSince, storage.purges.load(ordering: .relaxed) != unpurgedSince { return false }
            return partition.insert(
                entry, primary: primary, storageKey: storageKey, varyNames: varyNames, prefixDigests: prefixes.digests,
                directoryPrefixes: prefixes.directoryCount)
        }
    }

    /// Re-seals a revalidated response over its old entry (a `304` refresh). `tags` are the tags the
    /// 304 named, or nil when it named none: `previous`'s are kept then, since a 304 updates only the
    /// fields it carries (RFC 9111 4.3.4) and the stored record keeps no `Surrogate-Key` of its own.
    @discardableResult
    public func refresh(
        storageKey: KeyDigest, record: ResponseRecord, lifetime: StoragePolicy.Lifetime,
        tags: [String]?, previous: CacheEntry, responseTime: Double, generation: UInt64 = 0
    ) throws(EdgeError) -> CacheEntry {
        let entry = try seal(
            record, storageKey: storageKey, lifetime: lifetime, tagDigests: tags?.map(tagDigest) ?? previous.tagDigests,
            responseTime: responseTime, generation: generation)
        _ = storage.partition.withLock { $0.refresh(storageKey: storageKey, with: entry) }
        return entry
    }

    /// The metadata is fixed first, then the record is sealed bound to it.
    private func seal(
        _ record: ResponseRecord, storageKey: KeyDigest, lifetime: StoragePolicy.Lifetime, tagDigests: [KeyDigest],
        responseTime: Double, generation: UInt64
    ) throws(EdgeError) -> CacheEntry {
        var entry = CacheEntry(
            sealed: [], responseTime: responseTime, lifetime: lifetime, tagDigests: tagDigests, generation: generation)
        entry.sealed = try cipher.seal(record.encoded(), aad: aad(storageKey, for: entry))
        return entry
    }

    /// The associated data an entry under `storageKey` is sealed with: its place (tenant, digest)
    /// and its metadata header (`L2EntryCodec.header`), so neither can be changed in Redis.
    public func aad(_ storageKey: KeyDigest, for entry: CacheEntry) -> [UInt8] {
        var aad: [UInt8] = []  // one buffer: on the hit path this is the only allocation it costs
        aad.reserveCapacity(aadPrefix.count + 32 + L2EntryCodec.headerBytes(of: entry))
        aad.append(contentsOf: aadPrefix)
        storageKey.append(to: &aad)
        L2EntryCodec.appendHeader(of: entry, to: &aad)
        return aad
    }

    /// Opens an entry into `output` under its binding. On failure the caller drops the entry,
    /// records a `decrypt_failed` security event and treats the request as a miss. The associated
    /// data is built on the stack (`aad(_:for:)` lays out the same bytes).
    public func open(_ entry: CacheEntry, storageKey: KeyDigest, into output: UnsafeMutableRawBufferPointer)
        throws(EdgeError) -> Int
    {
        let count = aadPrefix.count + 32 + L2EntryCodec.headerBytes(of: entry)
        let result = withUnsafeTemporaryAllocation(byteCount: count, alignment: 8) { buffer in
            var aad = RawByteWriter(buffer)
            aad.write(aadPrefix)
            storageKey.write(to: &aad)
            L2EntryCodec.writeHeader(of: entry, to: &aad)
            return Result { () throws(EdgeError) -> Int in
                try entry.sealedBytes.withBytes { sealed throws(EdgeError) -> Int in
                    try cipher.open(sealedBytes: sealed, aad: UnsafeRawBufferPointer(buffer), into: output)
                }
            }
        }
        return try result.get()
    }

    /// Rewrites the sealed bytes of the entry stored for `target` (no Vary). Only for tests that prove
    /// a changed or moved value is refused; returns false when nothing is stored there.
    func rewriteSealed(target: String, _ body: @Sendable ([UInt8]) -> [UInt8]) -> Bool {
        let primary = primaryDigest(target: target)
        return storage.partition.withLock { $0.mutateEntry(storageKey: primary) { $0.sealed = body($0.sealed) } }
    }

    public func remove(storageKey: KeyDigest) { storage.partition.withLock { _ = $0.remove(storageKey: storageKey) } }

    /// Purges by keys, tags and prefixes, or everything; returns how many entries went.
    public func purge(keys: [String], tags: [String], prefixes: [String], all: Bool) -> Int {
        if all {
            return storage.partition.withLock { [storage] partition in
                storage.purges.add(1, ordering: .releasing)
                return partition.removeAll()
            }
        }
        let primaries = keys.map { primaryDigest(target: $0) }
        let tagDigests = tags.map(tagDigest)
        let prefixDigests = prefixes.map { (prefixDigest($0), primaryDigest(target: $0)) }
        return storage.partition.withLock { [storage] partition in
            storage.purges.add(1, ordering: .releasing)
            var removed = 0
            for primary in primaries { removed += partition.removeAll(primary: primary) }
            for tag in tagDigests { removed += partition.removeAll(tag: tag) }
            for (prefix, target) in prefixDigests { removed += partition.removeAll(prefix: prefix, asTarget: target) }
            return removed
        }
    }

    /// Applies a sibling's purge (by digests, as published through Redis); returns entries removed.
    public func purge(_ notice: PurgeNotice) -> Int {
        storage.partition.withLock { [storage] partition in
            storage.purges.add(1, ordering: .releasing)
            switch notice.kind {
            case .all: return partition.removeAll()
            case .keys: return notice.digests.reduce(0) { $0 + partition.removeAll(primary: $1) }
            case .indexes:
                // An index digest is a tag, a prefix or a primary (a purge by prefix sends the prefix's
                // primary too: a plain entry is not indexed under its whole target, decision 79).
                // Digests of different kinds never collide, except that a slot is found by one word
                // of its digest, which another shares about once in 2⁶⁴: then one more entry goes,
                // never fewer.
                return notice.digests.reduce(0) {
                    $0 + partition.removeAll(tag: $1) + partition.removeAll(indexedUnder: $1)
                        + partition.removeAll(primary: $1)
                }
            }
        }
    }

    /// Drops `entry` (one that failed to open) unless a re-seal has replaced it meanwhile; whether it
    /// was still there.
    @discardableResult
    public func remove(storageKey: KeyDigest, ifStillHolding entry: CacheEntry) -> Bool {
        storage.partition.withLock { $0.remove(storageKey: storageKey, ifStillHolding: entry.sealedBytes) }
    }

    /// Re-seals an entry read under an older key version with the current one (`reseal_on_read`);
    /// whether it was replaced (it may have changed meanwhile).
    @discardableResult
    public func reseal(_ entry: CacheEntry, storageKey: KeyDigest, plaintext: [UInt8]) -> Bool {
        guard let sealed = try? cipher.seal(plaintext, aad: aad(storageKey, for: entry)) else { return false }
        return storage.partition.withLock {
            $0.replaceSealed(storageKey: storageKey, expected: entry.sealedBytes, with: sealed)
        }
    }

    /// Entries per key version they are sealed under (stats).
    public func entriesByKeyVersion() -> [UInt32: Int] { storage.partition.withLock { $0.entriesByKeyVersion() } }

    /// Crypto-shredding in L1: drops every entry sealed under a key version the cipher no longer
    /// holds (one pass over this tenant's entries only); how many.
    public func dropRetiredEntries() -> Int {
        guard cipher.encrypts else { return 0 }
        return storage.partition.withLock { $0.removeAll(sealedUnderVersionNot: cipher.holdsKey(version:)) }
    }

    /// Entries, bytes and evictions, read under the lock in one go.
    public func occupancy() -> (entries: Int, bytes: Int, evictions: Int, quota: Int) {
        storage.partition.withLock { ($0.count, $0.usedBytes, $0.evictions, $0.quotaBytes) }
    }
}

/// Per-tenant request counters by outcome, kept per worker lane (`LaneCounters`) so the hit path
/// writes only its own event loop's memory; `/metrics` and `/_edge/stats` sum them when read. Also
/// the tenant's request and upstream durations and its upstream errors, the same way.
public final class TenantCounters: Sendable {
    /// The outcomes counted, in the order of `edge_requests_total`'s `cache_status` label values.
    public enum Kind: Int, Sendable, CaseIterable {
        case hit, stale, miss, revalidated, bypass, error

        /// The `cache_status` label value.
        public var label: String {
            switch self {
            case .hit: "hit"
            case .stale: "stale"
            case .miss: "miss"
            case .revalidated: "revalidated"
            case .bypass: "bypass"
            case .error: "error"
            }
        }
    }

    /// Why an upstream fetch failed, the `reason` label of `edge_upstream_errors_total`.
    public enum UpstreamError: Int, Sendable, CaseIterable {
        case connect, timeout, status5xx, invalidResponse

        public var label: String {
            switch self {
            case .connect: "connect"
            case .timeout: "timeout"
            case .status5xx: "status_5xx"
            case .invalidResponse: "invalid_response"
            }
        }
    }

    /// Histogram bucket bounds (seconds) for request and upstream durations.
    public static let durationBoundsSeconds = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    private static let sharedTierHitIndex = Kind.allCases.count
    private static let firstUpstreamErrorIndex = sharedTierHitIndex + 1

    private let counts = LaneCounters(count: Kind.allCases.count + 1 + UpstreamError.allCases.count)
    /// Time from a complete request to its response.
    public let duration = LaneHistogram(boundsNanoseconds: durationBoundsSeconds.map { Int64($0 * 1e9) })
    /// Time from sending a request upstream to its complete answer (or failure).
    public let upstreamDuration = LaneHistogram(boundsNanoseconds: durationBoundsSeconds.map { Int64($0 * 1e9) })

    public init() {}

    @inline(__always)
    public func increment(_ kind: Kind) { counts.add(kind.rawValue) }

    public func total(_ kind: Kind) -> Int { counts.total(kind.rawValue) }

    /// A hit answered from the shared tier (also counted as `.hit`).
    public func incrementSharedTierHit() { counts.add(Self.sharedTierHitIndex) }
    public var sharedTierHits: Int { counts.total(Self.sharedTierHitIndex) }

    public func increment(_ error: UpstreamError) { counts.add(Self.firstUpstreamErrorIndex + error.rawValue) }
    public func total(_ error: UpstreamError) -> Int { counts.total(Self.firstUpstreamErrorIndex + error.rawValue) }
}
