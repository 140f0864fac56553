import Testing

@testable import TenantEdgeCore

/// The partition's prefix index with directories grouped (`DirectoryGroups`): a seeded schedule of
/// stores (plain and varying, in nested directories, with and without queries), removals, purges by
/// prefix, key and tag and evictions, checked against a plain model that indexes every entry under
/// every prefix of its target, as the partition did before directories were grouped.
@Suite("Directory groups in the prefix index")
struct DirectoryGroupsTests {
    static let directories = ["/", "/a/", "/a/b/", "/a/b/c/", "/d/", "/a/bb/"]
    static let names = ["", "x", "y", "b", "x.json"]

    /// What the model holds per storage key: its primary and every prefix of its target.
    struct Stored {
        var primary: KeyDigest
        var prefixes: Set<String>
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func purgesByPrefixRemoveWhatTheUngroupedIndexWould(seed: UInt64) {
        let cache = TenantCacheTests.cache("acme", seed: seed)
        var partition = TenantPartition(quotaBytes: 1 << 30)
        var model: [KeyDigest: Stored] = [:]
        var random = SeededGenerator(seed: seed)
        for step in 0..<3000 {
            let directory = Self.directories.randomElement(using: &random)!
            let name = Self.names.randomElement(using: &random)!
            let query = Bool.random(using: &random) ? "" : "?q=\(Int.random(in: 0..<3, using: &random))"
            let target = directory + name + query
            let primary = cache.primaryDigest(target: target)
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<60:
                let varies = Int.random(in: 0..<4, using: &random) == 0
                let storageKey =
                    varies
                    ? cache.variantDigest(
                        target: target, varyNames: ["accept"],
                        requestHeaders: [HeaderField("accept", "\(Int.random(in: 0..<2, using: &random))")]
                    )
                    : primary
                let indexed = cache.indexedPrefixes(of: target)
                let inserted = partition.insert(
                    TenantPartitionTests.entry(bytes: 10), primary: primary, storageKey: storageKey,
                    varyNames: varies ? ["accept"] : [], prefixDigests: indexed.digests,
                    directoryPrefixes: indexed.directoryCount)
                #expect(inserted)
                // The partition's rules: a plain entry replaces its primary's variants, a variant the plain entry.
                if varies {
                    model[primary] = nil
                } else {
                    model = model.filter { $0.value.primary != primary }
                }
                model[storageKey] = Stored(primary: primary, prefixes: Set(TenantCache.prefixes(of: target)))
            case 60..<75:
                let prefix = TenantCache.prefixes(of: target).randomElement(using: &random)!
                let expected = model.filter { $0.value.prefixes.contains(prefix) }
                let removed = partition.removeAll(
                    prefix: cache.prefixDigest(prefix), asTarget: cache.primaryDigest(target: prefix))
                #expect(removed == expected.count, "step \(step): purge of prefix \(prefix)")
                for key in expected.keys { model[key] = nil }
            case 75..<85:
                let expected = model.filter { $0.value.primary == primary }.count
                #expect(partition.removeAll(primary: primary) == expected, "step \(step): purge of \(target)")
                model = model.filter { $0.value.primary != primary }
            case 85..<87:
                #expect(partition.removeAll() == model.count)
                model = [:]
            default:
                if let key = model.keys.randomElement(using: &random) {
                    let removed = partition.remove(storageKey: key)
                    #expect(removed)
                    model[key] = nil
                }
            }
            #expect(partition.count == model.count, "step \(step)")
        }
        // Whatever is left goes with a purge of `/`, and leaves no index behind.
        #expect(
            partition.removeAll(prefix: cache.prefixDigest("/"), asTarget: cache.primaryDigest(target: "/"))
                == model.count)
        #expect(partition.count == 0 && partition.usedBytes == 0)
        #expect(partition.indexSizes.directories == 0 && partition.indexSizes.ownPrefixes == 0)
    }

    /// Evicted entries leave their directory's group, and a slot reused by another directory's entry
    /// is found by that directory's prefixes only.
    @Test func evictionAndSlotReuseKeepGroupsRight() {
        let cache = TenantCacheTests.cache("acme", seed: 9)
        func store(_ target: String, in partition: inout TenantPartition) {
            let indexed = cache.indexedPrefixes(of: target)
            #expect(indexed.directoryCount == TenantCache.prefixes(of: target).count - 1, "\(target)")
            partition.insert(
                TenantPartitionTests.entry(bytes: 10), primary: cache.primaryDigest(target: target),
                storageKey: cache.primaryDigest(target: target), varyNames: [], prefixDigests: indexed.digests,
                directoryPrefixes: indexed.directoryCount)
        }
        // room for three entries of one directory: the first pays for the directory's group too
        var sizing = TenantPartition(quotaBytes: 1 << 20)
        store("/m/0", in: &sizing)
        let first = sizing.usedBytes
        store("/m/1", in: &sizing)
        let each = sizing.usedBytes - first
        #expect(each == 10 + 160 + 48 * 4, "an entry joining a group is charged for itself alone")
        var partition = TenantPartition(quotaBytes: first + 2 * each)
        func store(_ target: String) { store(target, in: &partition) }
        for n in 0..<3 { store("/m/\(n)") }
        for n in 0..<3 { store("/n/\(n)") }  // evicts every /m/ entry, reusing their slots
        #expect(partition.count == 3 && partition.evictions == 3)
        #expect(partition.indexSizes.directories == 1, "the /m/ group went with its last entry")
        #expect(
            partition.removeAll(prefix: cache.prefixDigest("/m/"), asTarget: cache.primaryDigest(target: "/m/")) == 0)
        #expect(partition.removeAll(prefix: cache.prefixDigest("/m"), asTarget: cache.primaryDigest(target: "/m")) == 0)
        #expect(
            partition.removeAll(prefix: cache.prefixDigest("/n/1"), asTarget: cache.primaryDigest(target: "/n/1")) == 1)
        #expect(partition.removeAll(prefix: cache.prefixDigest("/n"), asTarget: cache.primaryDigest(target: "/n")) == 2)
        #expect(partition.indexSizes.directories == 0 && partition.indexSizes.ownPrefixes == 0)
    }

    /// Directories the groups leave out (deeper than 32 segments, longer than the memo takes, not
    /// ASCII, empty segments) are indexed per entry as before: purges by root, by a deep prefix and by
    /// the path still find exactly their entries, and nothing of them stays behind.
    @Test func hostileDirectoriesFallBackToTheirOwnIndex() {
        let cache = TenantCacheTests.cache("acme", seed: 11)
        var partition = TenantPartition(quotaBytes: 1 << 30)
        let deep = String(repeating: "/a", count: TenantCache.maxIndexedSegments + 8) + "/x"
        let long = "/" + String(repeating: "d", count: TenantCache.memoizedDirectoryBytes + 50) + "/x"
        let targets = [deep, long, "/caf\u{E9}/x", "//x", "/short/x"]
        for target in targets {
            let indexed = cache.indexedPrefixes(of: target)
            partition.insert(
                TenantPartitionTests.entry(bytes: 10), primary: cache.primaryDigest(target: target),
                storageKey: cache.primaryDigest(target: target), varyNames: [], prefixDigests: indexed.digests,
                directoryPrefixes: indexed.directoryCount)
        }
        #expect(partition.count == targets.count)
        #expect(
            partition.removeAll(prefix: cache.prefixDigest("/a/a/a/"), asTarget: cache.primaryDigest(target: "/a/a/a/"))
                == 1, "the deep one")
        #expect(
            partition.removeAll(prefix: cache.prefixDigest(long), asTarget: cache.primaryDigest(target: long)) == 1,
            "the long one, by its path")
        #expect(partition.removeAll(prefix: cache.prefixDigest("/"), asTarget: cache.primaryDigest(target: "/")) == 3)
        #expect(partition.count == 0)
        #expect(partition.indexSizes.directories == 0 && partition.indexSizes.ownPrefixes == 0)
    }

    /// Two directories whose last digests collide but whose prefixes differ: the second is indexed
    /// under its own prefixes instead, and each purge still finds exactly its entries.
    @Test func aCollidingDirectoryIsIndexedOnItsOwn() {
        var partition = TenantPartition(quotaBytes: 1 << 20)
        let (root, one, two, shared) = (KeyDigest.of(1), KeyDigest.of(2), KeyDigest.of(3), KeyDigest.of(4))
        partition.insert(
            TenantPartitionTests.entry(bytes: 10), primary: .of(10), storageKey: .of(10), varyNames: [],
            prefixDigests: [root, one, shared, .of(11)], directoryPrefixes: 3)
        partition.insert(
            TenantPartitionTests.entry(bytes: 10), primary: .of(20), storageKey: .of(20), varyNames: [],
            prefixDigests: [root, two, shared, .of(21)], directoryPrefixes: 3)
        #expect(partition.indexSizes.directories == 1)
        #expect(partition.removeAll(indexedUnder: two) == 1 && partition.count == 1)
        #expect(partition.removeAll(indexedUnder: one) == 1 && partition.count == 0)
        #expect(partition.indexSizes.directories == 0 && partition.indexSizes.ownPrefixes == 0)
    }
}

extension KeyDigest {
    fileprivate static func of(_ n: Int) -> KeyDigest { KeyDigest(w0: UInt64(n), w1: 1, w2: 2, w3: 3) }
}
