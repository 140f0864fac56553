import Testing

@testable import TenantEdgeCore

/// A slot keeps what most entries need in 80 bytes and the rest in side tables (decision 79): what
/// comes back out must be what went in, bit for bit (the sealed value is bound to it), and the side
/// records must go with their entries, however they leave.
@Suite("Partition slots: compact metadata and side tables")
struct PartitionSlotTests {
    static func key(_ n: Int) -> KeyDigest { KeyDigest(w0: UInt64(n), w1: 0, w2: 0, w3: 7) }

    static func lifetime(_ freshness: Double, keep: Double, swr: Double = 0, sie: Double = 0, age: Double = 0)
        -> StoragePolicy.Lifetime
    {
        StoragePolicy.Lifetime(
            freshness: freshness, initialAge: age, staleWhileRevalidate: swr, staleIfError: sie, hasValidator: true,
            keep: keep, explicitlyPublic: true)
    }

    static func bits(_ entry: CacheEntry) -> [UInt64] {
        let life = entry.lifetime
        return [
            life.freshness, life.initialAge, life.staleWhileRevalidate, life.staleIfError, life.keep,
            entry.responseTime,
        ]
        .map(\.bitPattern) + [entry.generation, life.hasValidator ? 1 : 0, life.explicitlyPublic ? 1 : 0]
    }

    /// Whole seconds below 2³² are held in 32 bits; a fraction, a negative zero, a window of 2³²
    /// seconds, infinity or NaN are held as they came. Either way they come back bit for bit, with
    /// the response time, the initial age and the generation, through lookups, a 304 refresh and
    /// eviction of the rest.
    @Test func timesComeBackBitForBit() {
        let lifetimes = [
            Self.lifetime(60, keep: 120, swr: 30, sie: 60, age: 0.372),
            Self.lifetime(12.5, keep: 72.5, age: 3),
            Self.lifetime(60, keep: 60, sie: -0.0),
            Self.lifetime(1e10, keep: 1e10 + 1),
            Self.lifetime(Double(UInt32.max), keep: Double(UInt32.max)),
            Self.lifetime(4_294_967_296, keep: 4_294_967_296),
            Self.lifetime(.infinity, keep: .infinity, swr: .nan),
            Self.lifetime(0, keep: 0, age: -0.0),
        ]
        var partition = TenantPartition(quotaBytes: 1 << 20)
        var stored: [CacheEntry] = []
        for (n, lifetime) in lifetimes.enumerated() {
            let entry = CacheEntry(
                sealed: [UInt8](repeating: UInt8(n), count: 20), responseTime: 1_765_000_000.123 + Double(n),
                lifetime: lifetime, tagDigests: n % 2 == 0 ? [Self.key(500 + n)] : [],
                generation: UInt64.max - UInt64(n))
            partition.insert(entry, primary: Self.key(n), storageKey: Self.key(n), varyNames: [], prefixDigests: [])
            stored.append(entry)
        }
        for (n, entry) in stored.enumerated() {
            let found = partition.entry(storageKey: Self.key(n))
            #expect(found.map(Self.bits) == Self.bits(entry), "entry \(n)")
            #expect(found?.tagDigests == entry.tagDigests && found?.sealed == entry.sealed, "entry \(n)")
        }
        // a refresh from a wide lifetime to a compact one and back leaves one side record, not two
        let refreshed = CacheEntry(
            sealed: [9, 9], responseTime: 7.25, lifetime: Self.lifetime(30, keep: 30), tagDigests: [])
        let toCompact = partition.refresh(storageKey: Self.key(1), with: refreshed)
        #expect(toCompact && partition.peek(storageKey: Self.key(1)).map(Self.bits) == Self.bits(refreshed))
        let toWide = partition.refresh(storageKey: Self.key(1), with: stored[1])
        #expect(toWide)
        #expect(partition.peek(storageKey: Self.key(1)).map(Self.bits) == Self.bits(stored[1]))
        for n in stored.indices { partition.remove(storageKey: Self.key(n)) }
        #expect(partition.count == 0 && partition.sideRecords == 0 && partition.usedBytes == 0)
    }

    /// Two storage digests sharing their first word are one slot's key: the second replaces the
    /// first, whose tag index goes with it, and a lookup of the first finds the second's entry (its
    /// bytes are bound to the second digest, so it does not open under the first: `TenantCache`).
    @Test func digestsSharingAWordShareASlot() {
        var partition = TenantPartition(quotaBytes: 1 << 20)
        let first = KeyDigest(w0: 42, w1: 1, w2: 0, w3: 0)
        let second = KeyDigest(w0: 42, w1: 2, w2: 0, w3: 0)
        let tag = Self.key(900)
        let life = Self.lifetime(60, keep: 60)
        partition.insert(
            CacheEntry(sealed: [1], responseTime: 0, lifetime: life, tagDigests: [tag]), primary: first,
            storageKey: first, varyNames: [], prefixDigests: [])
        partition.insert(
            CacheEntry(sealed: [2], responseTime: 0, lifetime: life), primary: second, storageKey: second,
            varyNames: [], prefixDigests: [])
        #expect(partition.count == 1)
        #expect(partition.peek(storageKey: first)?.sealed == [2])
        let purged = partition.removeAll(tag: tag)
        #expect(purged == 0, "the first entry's tag went with it")
        #expect(partition.sideRecords == 0)
        let removed = partition.remove(storageKey: second)
        #expect(removed && partition.count == 0)
    }

    /// Seeded inserts of every kind (plain, tagged, varying, with a query's path among its own
    /// prefixes, with a wide lifetime), 304 refreshes that add or drop tags and widen or narrow the
    /// lifetime, re-seals, removals, purges by key, tag, prefix and retired key version, and
    /// evictions under a small quota, against a model of what is stored: after every step the side
    /// tables hold exactly the records the stored entries need, the quota holds, and what is charged
    /// is what the entries and index keys held then are charged (decision 80); at the end nothing is left.
    @Test(arguments: [UInt64(5), 6])
    func sideRecordsGoWithTheirEntries(seed: UInt64) {
        struct Kind { var tagged = false, varies = false, query = false, wide = false, keptInFull = false }
        var random = SeededGenerator(seed: seed)
        var partition = TenantPartition(quotaBytes: 40 * 600, compactionFloor: 8)  // compacted as it goes
        var model: [Int: Kind] = [:]  // storage key number → what it is
        let (directories, tags) = ([Self.key(10_000), Self.key(10_003)], [Self.key(10_001), Self.key(10_002)])
        func entry(tagged: Bool, wide: Bool, n: Int, version: UInt8, count: Int? = nil) -> CacheEntry {
            CacheEntry(
                sealed: [version, version, version, version]
                    + [UInt8](repeating: 3, count: count ?? Int.random(in: 1...300, using: &random)),
                responseTime: 1, lifetime: wide ? Self.lifetime(0.5, keep: 9.5) : Self.lifetime(1, keep: 9),
                tagDigests: tagged ? [tags[n % 2]] : [])
        }
        for step in 0..<5_000 {
            let n = Int.random(in: 0..<120, using: &random)
            let version = UInt8.random(in: 1...3, using: &random)
            let primary = n >= 100 ? Self.key(200 + n % 4) : Self.key(n)  // keys 100..<120: variants of four
            switch Int.random(in: 0..<14, using: &random) {
            case 0..<6:
                var kind = Kind(tagged: .random(using: &random), varies: n >= 100, wide: .random(using: &random))
                kind.query = !kind.varies && Bool.random(using: &random)
                kind.keptInFull = kind.tagged || kind.varies || kind.query
                let own = kind.query ? [Self.key(20_000 + n / 3), Self.key(30_000 + n)] : [Self.key(30_000 + n)]
                let stored = partition.insert(
                    entry(tagged: kind.tagged, wide: kind.wide, n: n, version: version), primary: primary,
                    storageKey: Self.key(n), varyNames: kind.varies ? ["accept"] : [],
                    prefixDigests: [directories[n % 2]] + own, directoryPrefixes: 1)
                #expect(stored, "step \(step)")
                model[n] = kind
            case 6, 7:
                let (tagged, wide) = (Bool.random(using: &random), Bool.random(using: &random))
                let refreshed = partition.refresh(
                    storageKey: Self.key(n), with: entry(tagged: tagged, wide: wide, n: n, version: version))
                #expect(refreshed == (model[n] != nil), "step \(step)")
                model[n]?.tagged = tagged
                model[n]?.wide = wide
                if tagged { model[n]?.keptInFull = true }  // a dropped tag leaves the digest until the entry goes
            case 8:
                guard let stored = partition.peek(storageKey: Self.key(n)) else { break }
                let resealed = partition.replaceSealed(
                    storageKey: Self.key(n), expected: stored.sealedBytes,
                    with: entry(tagged: false, wide: false, n: n, version: version, count: stored.sealedCount - 4)
                        .sealed)
                #expect(resealed, "step \(step)")
            case 9: partition.remove(storageKey: Self.key(n))
            case 10: _ = partition.removeAll(tag: tags[n % 2])
            case 11: _ = partition.removeAll(prefix: Self.key(20_000 + n / 3), asTarget: primary)
            case 12: _ = partition.removeAll { $0 != UInt32(version) * 0x0101_0101 }
            default: _ = partition.removeAll(primary: primary)
            }
            model = model.filter { partition.peek(storageKey: Self.key($0.key)) != nil }
            let kinds = Array(model.values)
            let expected =
                kinds.filter(\.keptInFull).count + kinds.filter(\.varies).count + kinds.filter(\.tagged).count
                + kinds.filter(\.query).count + kinds.filter(\.wide).count
            #expect(partition.count == model.count && partition.sideRecords == expected, "step \(step)")
            #expect(partition.usedBytes <= partition.quotaBytes, "step \(step)")
            #expect(partition.usedBytes == partition.recountedUsedBytes, "step \(step): charges and records agree")
        }
        let purged = directories.reduce(0) { $0 + partition.removeAll(indexedUnder: $1) }
        #expect(purged == model.count)
        #expect(partition.count == 0 && partition.sideRecords == 0 && partition.usedBytes == 0)
        #expect(partition.indexSizes.directories == 0 && partition.indexSizes.ownPrefixes == 0)
    }
}
