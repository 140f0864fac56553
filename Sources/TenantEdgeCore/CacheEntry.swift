/// One stored response in L1: the sealed record plus the clear metadata the cache rules need
/// (times and lifetimes only; nothing that names the resource).
public struct CacheEntry: Sendable {
    /// `ResponseRecord` bytes sealed under the tenant key, bound to the entry's storage key.
    public var sealed: [UInt8]
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
        self.sealed = sealed
        self.responseTime = responseTime
        self.lifetime = lifetime
        self.tagDigests = tagDigests
        self.generation = generation
    }

    /// Bytes charged to the tenant's quota: the sealed value plus a fixed allowance for index and
    /// bookkeeping, so a flood of tiny entries cannot exceed the quota through overhead.
    public var chargedBytes: Int { sealed.count + 160 + tagDigests.count * 48 }

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
