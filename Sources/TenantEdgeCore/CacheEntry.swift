/// One stored response in L1: the sealed record plus the clear metadata the cache rules need
/// (times and lifetimes only; nothing that names the resource).
public struct CacheEntry: Sendable {
    /// `ResponseRecord` bytes sealed under the tenant key, bound to the entry's storage key: an
    /// array until the partition stores the entry in its slab.
    public var sealedBytes: SealedBytes
    /// When the response (or its last 304 refresh) arrived, in clock seconds.
    public var responseTime: Double
    public var lifetime: StoragePolicy.Lifetime
    /// Digests of the entry's tags, kept so that removal can unlink the tag index.
    public var tagDigests: [KeyDigest]
    /// The tenant's L2 generation when the entry was made (0 without L2): bound into the sealed
    /// bytes, so a value moved into another generation's key does not pass for it.
    public var generation: UInt64

    public init(
        sealed: [UInt8], responseTime: Double, lifetime: StoragePolicy.Lifetime, tagDigests: [KeyDigest] = [],
        generation: UInt64 = 0
    ) {
        self.init(
            sealedBytes: SealedBytes(sealed), responseTime: responseTime, lifetime: lifetime, tagDigests: tagDigests,
            generation: generation)
    }

    /// An entry whose bytes are where `sealedBytes` says (a partition's slab record).
    init(
        sealedBytes: SealedBytes, responseTime: Double, lifetime: StoragePolicy.Lifetime, tagDigests: [KeyDigest],
        generation: UInt64
    ) {
        self.sealedBytes = sealedBytes
        self.responseTime = responseTime
        self.lifetime = lifetime
        self.tagDigests = tagDigests
        self.generation = generation
    }

    /// The sealed bytes as an array: a copy when they are in a slab (cold paths and tests; the hit
    /// path reads them in place through `sealedBytes.withBytes`).
    public var sealed: [UInt8] {
        get { sealedBytes.array }
        set { sealedBytes = SealedBytes(newValue) }
    }

    /// The sealed value's length, without copying it out of its slab.
    public var sealedCount: Int { sealedBytes.count }

    /// This entry with its sealed bytes in an array of its own, for holding past the hit path.
    public var detached: CacheEntry {
        var copy = self
        copy.sealedBytes = SealedBytes(sealedBytes.array)
        return copy
    }

    /// The key version the sealed value names in its first 4 bytes (big-endian); nil when shorter.
    public var keyVersion: UInt32? {
        sealedBytes.withBytes { bytes -> UInt32? in
            guard bytes.count >= 4 else { return nil }
            return UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        }
    }

    /// Bytes charged to the tenant's quota for this entry itself: its sealed value, its slot, and its
    /// tags' and lifetime's records (`PartitionCharges`), so neither a flood of tiny entries nor an
    /// upstream choosing costly ones can hold more than the quota. The partition adds what depends
    /// on where the entry goes (`TenantPartition.Slot.charge`) and charges its indexes' keys apart.
    public var chargedBytes: Int {
        var charge = sealedCount + PartitionCharges.entry
        if !tagDigests.isEmpty {
            charge +=
                PartitionCharges.arrayRecord
                + tagDigests.count * (PartitionCharges.digestInRecord + PartitionCharges.setMember)
        }
        if TenantPartition.Slot.wholeSeconds(lifetime) == nil { charge += PartitionCharges.slotRecord }
        return charge
    }

    /// The entry's current age (RFC 9111 4.2.3).
    public func age(at now: Double) -> Double { lifetime.initialAge + max(0, now - responseTime) }

    public enum Freshness: Sendable, Equatable {
        /// Serve as a hit; `remaining` seconds of freshness left.
        case fresh(remaining: Double)
        /// Serve stale now and refresh in the background (`stale-while-revalidate`).
        case staleWhileRevalidate
        /// Must be revalidated before use; `servableOnError` when within `stale-if-error`.
        case stale(servableOnError: Bool)
        /// Past its keep time: drop it.
        case expired
    }

    public func freshness(at now: Double) -> Freshness {
        let age = age(at: now)
        if age < lifetime.freshness { return .fresh(remaining: lifetime.freshness - age) }
        let staleFor = age - lifetime.freshness
        if age >= lifetime.keep { return .expired }
        if staleFor < lifetime.staleWhileRevalidate { return .staleWhileRevalidate }
        return .stale(servableOnError: staleFor < lifetime.staleIfError)
    }

    /// Whether a stale-if-error copy may still be used when the upstream fails.
    public func servableOnError(at now: Double) -> Bool {
        let staleFor = age(at: now) - lifetime.freshness
        return staleFor < lifetime.staleIfError
    }
}
