import Testing

@testable import TenantEdgeCore

/// A partition that entries have left gives back the room its tables held (`shrinkIfSparse`,
/// decision 81) and keeps everything else: the stored entries and their bytes, their LRU order, their
/// charges, and every index a purge finds them by.
@Suite("Partition compaction")
struct PartitionCompactionTests {
    static let lifetime = StoragePolicy.Lifetime(
        freshness: 60, initialAge: 0, staleWhileRevalidate: 0, staleIfError: 0, hasValidator: false, keep: 60)
    /// Freshness of half a second: kept in a side table (`wideLifetimes`).
    static let wideLifetime = StoragePolicy.Lifetime(
        freshness: 0.5, initialAge: 0, staleWhileRevalidate: 0, staleIfError: 0, hasValidator: false, keep: 9.5)

    static func key(_ n: Int) -> KeyDigest { KeyDigest(w0: UInt64(n), w1: 5, w2: 0, w3: 11) }

    /// Bytes that name their entry, so one read from another's record shows.
    static func sealed(_ n: Int) -> [UInt8] {
        (0..<(40 + n % 90)).map { UInt8(truncatingIfNeeded: n &* 7 &+ $0) }
    }

    /// Entry `n` in one of four shapes: two tags of its own; a variant of primary `50_000 + n / 2`;
    /// plain in directory `n % 8`; a wide lifetime. The first and the last are plain entries with a
    /// query (their path a further own prefix).
    static func store(_ n: Int, in partition: inout TenantPartition) -> Bool {
        let entry = CacheEntry(
            sealed: sealed(n), responseTime: 1, lifetime: n % 4 == 3 ? wideLifetime : lifetime,
            tagDigests: n % 4 == 0 ? [key(10_000 + n), key(20_000 + n)] : [])
        switch n % 4 {
        case 1:
            return partition.insert(
                entry, primary: key(50_000 + n / 2), storageKey: key(n), varyNames: ["accept"],
                prefixDigests: [key(60_000 + n / 2)])
        case 2:
            return partition.insert(
                entry, primary: key(n), storageKey: key(n), varyNames: [],
                prefixDigests: [key(70_000 + n % 8), key(80_000 + n)], directoryPrefixes: 1)
        default:
            return partition.insert(
                entry, primary: key(n), storageKey: key(n), varyNames: [],
                prefixDigests: [key(90_000 + n / 3), key(n)])
        }
    }

    /// Storage keys from the least recently used, following `newer`, checked against `older`.
    static func lruOrder(_ partition: TenantPartition) -> [UInt64] {
        var order: [UInt64] = []
        var index = partition.oldest
        var previous = -1
        while index >= 0, order.count <= partition.slots.count {
            #expect(Int(partition.slots[index].older) == previous, "the links of slot \(index) disagree")
            order.append(partition.slots[index].keyWord)
            previous = index
            index = Int(partition.slots[index].newer)
        }
        #expect(previous == partition.newest)
        return order
    }

    /// Side records a stored entry of each shape holds (`TenantPartition.sideRecords`).
    static func sideRecords(_ n: Int) -> Int { [3, 2, 0, 3][n % 4] }

    @Test func aPartitionLeftMostlyEmptyGivesBackItsRoomAndKeepsItsEntries() {
        var partition = TenantPartition(quotaBytes: 1 << 21, compactionFloor: 16)
        let all = 0..<800
        for n in all { #expect(Self.store(n, in: &partition)) }
        for n in stride(from: 0, to: 800, by: 7) { _ = partition.entry(storageKey: Self.key(n)) }  // reorder
        let peak = partition.capacities
        let kept = Set(all.filter { $0 % 50 < 4 })  // 64 entries, 16 of each shape
        for n in all where !kept.contains(n) { partition.remove(storageKey: Self.key(n)) }
        let order = Self.lruOrder(partition)
        let used = partition.usedBytes
        #expect(partition.slots.count == all.count, "nothing is rebuilt until the partition grows")

        partition.shrinkIfSparse()
        #expect(partition.slots.count == kept.count && partition.freeSlots.isEmpty)
        let now = partition.capacities
        #expect(now.slots * 8 < peak.slots, "slots: \(now.slots) of \(peak.slots)")
        #expect(now.sideTables * 8 < peak.sideTables, "side tables: \(now.sideTables) of \(peak.sideTables)")
        #expect(now.indexes * 8 < peak.indexes, "indexes: \(now.indexes) of \(peak.indexes)")
        #expect(now.directories.slots * 8 < peak.directories.slots)

        // the same entries, bytes, lifetimes, order and charges
        #expect(Self.lruOrder(partition) == order)
        #expect(partition.usedBytes == used && used == partition.recountedUsedBytes)
        #expect(partition.sideRecords == kept.reduce(0) { $0 + Self.sideRecords($1) })
        for n in kept {
            #expect(partition.peek(storageKey: Self.key(n))?.sealed == Self.sealed(n), "entry \(n)")
            #expect(partition.peek(storageKey: Self.key(n))?.lifetime.freshness == (n % 4 == 3 ? 0.5 : 60))
        }

        // growing compacts too, and the partition goes on as before
        for n in all where !kept.contains(n) { #expect(Self.store(n, in: &partition)) }
        for n in all where !kept.contains(n) { partition.remove(storageKey: Self.key(n)) }
        #expect(partition.slots.count == all.count)
        #expect(Self.store(1_003, in: &partition))  // a plain entry with a query
        #expect(partition.slots.count == kept.count + 1)
        #expect(Self.lruOrder(partition) == order + [Self.key(1_003).w0])
        #expect(partition.usedBytes == partition.recountedUsedBytes)

        // every index still finds its entries: a tag, a variant's primary, a directory, a query's path
        #expect(partition.removeAll(tag: Self.key(20_100)) == 1)
        #expect(partition.peek(storageKey: Self.key(100)) == nil)
        #expect(partition.removeAll(primary: Self.key(50_000 + 101 / 2)) == 1)
        #expect(partition.peek(storageKey: Self.key(101)) == nil)
        let inDirectory = kept.filter { $0 % 4 == 2 && $0 % 8 == 2 }
        #expect(!inDirectory.isEmpty)
        #expect(partition.removeAll(indexedUnder: Self.key(70_002)) == inDirectory.count)
        #expect(inDirectory.allSatisfy { partition.peek(storageKey: Self.key($0)) == nil })
        #expect(partition.removeAll(prefix: Self.key(90_000 + 1_003 / 3), asTarget: Self.key(999_999)) == 1)
        #expect(partition.usedBytes == partition.recountedUsedBytes)

        // and the least recently used still goes first
        let oldest = Self.lruOrder(partition).first
        let room = partition.quotaBytes - partition.usedBytes
        let filler = CacheEntry(
            sealed: [UInt8](repeating: 9, count: room - 160 + 1), responseTime: 1, lifetime: Self.lifetime)
        let stored = partition.insert(
            filler, primary: Self.key(2_000), storageKey: Self.key(2_000), varyNames: [], prefixDigests: [])
        #expect(stored && partition.evictions == 1 && !Self.lruOrder(partition).contains(oldest!))
    }

    /// Directories of one entry each, most of them purged: the groups are renumbered with the
    /// slots, and every prefix still finds the entries of the directories left.
    @Test func directoryGroupsAreRenumberedWithTheSlots() {
        var partition = TenantPartition(quotaBytes: 1 << 22, compactionFloor: 16)
        func store(_ n: Int) -> Bool {
            let entry = CacheEntry(sealed: Self.sealed(n), responseTime: 1, lifetime: Self.lifetime)
            // `/a/dN/…`: a shared level and a directory of its own (three in each of 100)
            return partition.insert(
                entry, primary: Self.key(n), storageKey: Self.key(n), varyNames: [],
                prefixDigests: [Self.key(70_000), Self.key(71_000 + n / 3), Self.key(n)], directoryPrefixes: 2)
        }
        for n in 0..<300 { #expect(store(n)) }
        let peak = partition.capacities.directories
        let keptDirectories = [4, 50, 77]
        for directory in 0..<100 where !keptDirectories.contains(directory) {
            #expect(partition.removeAll(indexedUnder: Self.key(71_000 + directory)) == 3)
        }
        #expect(partition.indexSizes.directories == 3)
        let copied = partition.peek(storageKey: Self.key(150))  // read after its slab's header is rewritten
        partition.shrinkIfSparse()
        #expect(partition.capacities.directories.groups * 8 < peak.groups)
        #expect(partition.directories.chargedBytes == partition.directories.recountedChargedBytes)
        #expect(partition.usedBytes == partition.recountedUsedBytes)
        #expect(copied?.sealed == Self.sealed(150))
        #expect(store(1_000))  // directory 333, a new group after the renumbered ones
        #expect(partition.removeAll(indexedUnder: Self.key(71_000 + 50)) == 3)
        #expect((150..<153).allSatisfy { partition.peek(storageKey: Self.key($0)) == nil })
        #expect(partition.removeAll(indexedUnder: Self.key(70_000)) == 7)  // the rest, through the shared level
        #expect(partition.count == 0 && partition.usedBytes == 0 && partition.indexSizes.directories == 0)
    }

    /// A 304 that arrives when most entries have gone renumbers the slots first, then refreshes the
    /// right entry under its new number.
    @Test func aRefreshRenumbersFirstAndRefreshesTheRightEntry() {
        var partition = TenantPartition(quotaBytes: 1 << 21, compactionFloor: 16)
        for n in 0..<200 { #expect(Self.store(n, in: &partition)) }
        for n in 0..<200 where n % 10 != 2 { partition.remove(storageKey: Self.key(n)) }
        let refreshed = CacheEntry(
            sealed: Self.sealed(7_777), responseTime: 2, lifetime: Self.lifetime, tagDigests: [Self.key(12_345)])
        let done = partition.refresh(storageKey: Self.key(102), with: refreshed)
        #expect(done && partition.slots.count == 20)
        #expect(partition.peek(storageKey: Self.key(102))?.sealed == Self.sealed(7_777))
        #expect(Self.lruOrder(partition).last == Self.key(102).w0)
        for n in stride(from: 2, to: 200, by: 10) where n != 102 {
            #expect(partition.peek(storageKey: Self.key(n))?.sealed == Self.sealed(n), "entry \(n)")
        }
        #expect(partition.removeAll(tag: Self.key(12_345)) == 1)
        #expect(partition.usedBytes == partition.recountedUsedBytes)
    }

    @Test func aPartitionEmptiedAndRefilledIsRenumberedFromScratch() {
        var partition = TenantPartition(quotaBytes: 1 << 22, compactionFloor: 16)
        for n in 0..<200 { #expect(Self.store(n, in: &partition)) }
        for n in 0..<200 { partition.remove(storageKey: Self.key(n)) }
        #expect(partition.count == 0 && partition.usedBytes == 0)
        #expect(Self.store(4, in: &partition))
        #expect(partition.slots.count == 1 && partition.oldest == 0 && partition.newest == 0)
        #expect(partition.indexSizes.directories == 0 && partition.capacities.directories.slots == 0)
        #expect(partition.peek(storageKey: Self.key(4))?.sealed == Self.sealed(4))
        #expect(partition.removeAll(tag: Self.key(10_004)) == 1 && partition.usedBytes == 0)
    }

    /// A partition that evicts to make room reuses the slots it frees: it holds no spare room, so
    /// nothing is rebuilt; and a table under the floor is never rebuilt.
    @Test func aPartitionChurningAtItsQuotaHoldsNoSpareRoom() {
        let charge = CacheEntry(sealed: Self.sealed(0), responseTime: 1, lifetime: Self.lifetime).chargedBytes
        var partition = TenantPartition(quotaBytes: 100 * (charge + 200), compactionFloor: 16)
        for n in 0..<2_000 where n % 4 == 2 { #expect(Self.store(n, in: &partition)) }
        #expect(partition.evictions > 300)
        #expect(partition.slots.count <= partition.count + 1 && partition.freeSlots.count <= 1)
        #expect(SparseStorage.isSparse(count: 3, capacity: 15, floor: 16) == false)
        #expect(SparseStorage.isSparse(count: 4, capacity: 16, floor: 16) == false)
        #expect(SparseStorage.isSparse(count: 3, capacity: 16, floor: 16))
    }

    /// A tag shared by many entries keeps a set; when most leave, it is rebuilt to the few left.
    @Test func aSharedTagsSetShrinksAsItsEntriesGo() {
        var set = DigestSet()
        for n in 0..<1_000 { set.insert(Self.key(n)) }
        for n in 0..<990 { set.remove(Self.key(n)) }
        #expect(set.count == 10)
        #expect((990..<1_000).allSatisfy { set.contains(Self.key($0)) })
        #expect(set.capacity < 64, "capacity \(set.capacity)")
    }
}
