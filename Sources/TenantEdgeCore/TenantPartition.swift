/// One tenant's L1 partition: an LRU of sealed entries within a byte quota, with the indexes that
/// make purges by key, tag and prefix proportional to what they remove, never a scan.
///
/// Not thread-safe (like groupcache's `lru`): `TenantCache` puts it behind a lock. Every operation
/// is O(1) apart from purges, which are O(entries removed), and rebuilds of what purges left sparse
/// (`shrinkIfSparse`), amortised O(1) a removal. A copy shares its slabs with the original, whose
/// records' headers a rebuild in one rewrites: only one of them may go on being changed.
///
/// Keys: a *primary* digest names the cache key (the request target); a *storage* digest names one
/// stored variant of it (equal to the primary unless the response had `Vary`). A target's directory
/// prefixes (`/`, `/v1`, `/v1/`) index it through its directory's group (`DirectoryGroups`, shared by
/// every entry of the directory); its own prefixes (the whole path and target) point at primaries,
/// except a plain entry's most specific one (its whole target), which is not indexed at all: the
/// entry under that target is the one stored under the prefix's primary digest, which a purge by
/// prefix removes too (`removeAll(prefix:asTarget:)`, decision 79).
/// Tag digests point at storage digests. A *plain* entry (stored under its primary, no `Vary`)
/// has no `Variants` record: most entries are plain, and the record cost about 180 bytes each
/// (`make bench-memory`).
///
/// Slots are found by one word of their storage digest, and keep in 80 bytes what most entries
/// need; the rest is in side tables by slot number (`Slot`, `PartitionSlot.swift`). Removals and
/// purges are in `TenantPartition+Removal.swift`.
public struct TenantPartition {
    /// The stored variants of a primary whose entries are not plain.
    struct Variants {
        var varyNames: [String]
        var storageKeys: DigestSet
        /// The primary's own prefix digests (each variant is in its directory's group itself).
        var prefixDigests: [KeyDigest]
    }

    /// What a lookup by primary key found.
    public enum Lookup {
        case miss
        /// The stored responses vary on these request headers: compute the variant digest and call
        /// `entry(storageKey:)`.
        case needsVariant(varyNames: [String])
        case found(CacheEntry)
    }

    public let quotaBytes: Int
    /// Bytes charged to the quota: the entries' own, and the keys of the indexes and the directory
    /// groups while they exist (`PartitionCharges`).
    public var usedBytes: Int { entryBytes + indexBytes + directories.chargedBytes }
    var entryBytes = 0
    var indexBytes = 0
    public internal(set) var evictions = 0

    var slots: [Slot] = []
    var freeSlots: [Int] = []
    /// Storage digest's first word → slot.
    var slotTable = SlotTable()
    var newest = -1
    var oldest = -1
    var variantsByPrimary: [KeyDigest: Variants] = [:]
    var primariesByPrefix: [KeyDigest: DigestSet] = [:]
    var storageKeysByTag: [KeyDigest: DigestSet] = [:]
    var directories = DirectoryGroups()
    /// The entries' sealed bytes, in slabs rather than an array each (decision 70).
    var sealedSlabs = SealedSlabStore()

    // The side tables of the slots that need them (`Slot.Flags` says which), by slot number.
    /// Whole storage digests of variants and of entries with tags or further own prefixes.
    var fullKeys: [Int32: KeyDigest] = [:]
    /// The primary of each stored variant.
    var primaryOfVariant: [Int32: KeyDigest] = [:]
    var tagsOfSlot: [Int32: [KeyDigest]] = [:]
    /// A plain entry's own prefixes other than its most specific (the path, when the target has a
    /// query): they are in `primariesByPrefix`, which the query's siblings share.
    var moreOwnPrefixes: [Int32: [KeyDigest]] = [:]
    var wideLifetimes: [Int32: StoragePolicy.Lifetime] = [:]

    /// Tables with room for fewer are never rebuilt for being sparse (`shrinkIfSparse`).
    let compactionFloor: Int

    public init(quotaBytes: Int) { self.init(quotaBytes: quotaBytes, compactionFloor: 128) }

    init(quotaBytes: Int, compactionFloor: Int) {
        self.quotaBytes = quotaBytes
        self.compactionFloor = compactionFloor
    }

    public var count: Int { slotTable.count }

    /// Runs `body` on the slot table taken out of `self`, so it can read the slots while it changes
    /// (a closure reading `self.slots` during a mutation of `self.slotTable` is an overlapping access;
    /// a copy of `slots` kept alive would make the next slot write copy the whole array).
    mutating func withSlotTable<Result>(_ body: (inout SlotTable, [Slot]) -> Result) -> Result {
        var table = slotTable
        slotTable = SlotTable()
        defer { slotTable = table }
        return body(&table, slots)
    }

    /// The slot holding `storageKey` (by its first word, `Slot`), if any.
    func slot(of storageKey: KeyDigest) -> Int? {
        slotTable.find(storageKey.w0) { slots[$0].keyWord == storageKey.w0 }
    }

    /// The entry stored under `storageKey`, leaving the LRU order alone.
    public func peek(storageKey: KeyDigest) -> CacheEntry? { slot(of: storageKey).map(entry(at:)) }
    /// Finds the entry for a primary key, marking it most recently used.
    /// A response without `Vary` is stored under its primary digest, and a primary's variants are
    /// either all without `Vary` (one, under the primary) or all with it (under variant digests;
    /// `insert` drops the others when the upstream changes its `Vary`), so the slot index answers
    /// the common case alone: one hash lookup, not two, which shows when a million entries no
    /// longer fit the CPU's caches.
    public mutating func lookup(primary: KeyDigest) -> Lookup {
        if let slot = slot(of: primary) {
            touch(slot)
            return .found(entry(at: slot))
        }
        guard let variants = variantsByPrimary[primary] else { return .miss }
        if !variants.varyNames.isEmpty { return .needsVariant(varyNames: variants.varyNames) }
        return entry(storageKey: primary).map(Lookup.found) ?? .miss
    }

    /// Finds one stored variant, marking it most recently used.
    public mutating func entry(storageKey: KeyDigest) -> CacheEntry? {
        guard let slot = slot(of: storageKey) else { return nil }
        touch(slot)
        return entry(at: slot)
    }

    /// Stores an entry, evicting this tenant's least recently used entries until it fits its quota.
    /// Returns false, storing nothing, when the entry alone is larger than the quota (or than 4 GiB,
    /// which a slot counts in 32 bits), or, having removed what it replaces, when a colliding
    /// directory's group was evicted and it no longer fits.
    /// `prefixDigests`: the target's prefix digests, its `directoryPrefixes` first (the boundaries up
    /// to the path's last `/`, shallowest first, as `TenantCache.indexedPrefixes(of:)` gives them).
    @discardableResult
    public mutating func insert(
        _ entry: CacheEntry, primary: KeyDigest, storageKey: KeyDigest, varyNames: [String], prefixDigests: [KeyDigest],
        directoryPrefixes: Int = 0
    ) -> Bool {
        // A response that varies is never stored under its primary digest: `lookup` serves what
        // it finds there to any request (an L2 directory that says otherwise is refused here).
        guard varyNames.isEmpty || storageKey != primary else { return false }
        let plain = storageKey == primary
        shrinkIfSparse()  // before it may grow: what went since it last grew no longer holds room
        let directory = Array(prefixDigests[..<min(max(directoryPrefixes, 0), prefixDigests.count)])
        func cost(asIfEmpty: Bool = false) -> Placement {
            placement(
                of: entry, primary: primary, plain: plain, varyNames: varyNames, prefixDigests: prefixDigests,
                directory: directory, asIfEmpty: asIfEmpty)
        }
        let most = cost(asIfEmpty: true)
        guard most.charge + most.keyBytes <= quotaBytes, UInt32(exactly: most.charge) != nil else { return false }
        remove(storageKey: storageKey)
        if plain {
            // the upstream's newest answer does not vary: whatever variants there were no longer apply
            if variantsByPrimary[primary] != nil { removeAll(primary: primary) }
        } else {
            remove(storageKey: primary)  // a plain entry, if the upstream has only now begun to vary
            if let existing = variantsByPrimary[primary], existing.varyNames != varyNames {
                removeAll(primary: primary)  // the upstream changed its Vary: older variants no longer apply
            }
        }
        var placing = cost()
        while usedBytes + placing.charge + placing.keyBytes > quotaBytes, oldest >= 0, removeSlot(oldest) {
            evictions += 1
            placing = cost()  // an evicted entry may have taken an index key this one would have shared
        }
        guard usedBytes + placing.charge + placing.keyBytes <= quotaBytes,
            let slotCharge = UInt32(exactly: placing.charge)
        else { return false }  // only if a colliding directory's group is what `most` missed
        let charge = placing.charge
        let index = freeSlots.popLast() ?? slots.count
        let number = Int32(truncatingIfNeeded: index)  // below 2³¹: `SlotTable.insert` checks it
        let joined = !directory.isEmpty && directories.join(slot: index, directoryPrefixes: directory)
        assert(joined == placing.joins, "`DirectoryGroups.accepts` and `join` disagree")
        let own = joined ? Array(prefixDigests[directory.count...]) : prefixDigests
        let further = plain ? Array(own.dropLast()) : []
        var slot = Slot.free
        slot.keyWord = storageKey.w0
        slot.charge = slotCharge
        slot.older = Int32(newest)
        if !plain {
            slot.flags.insert(.variant)
            primaryOfVariant[number] = primary
        }
        if !further.isEmpty {
            slot.flags.insert(.moreOwnPrefixes)
            moreOwnPrefixes[number] = further
        }
        if !plain || !further.isEmpty || !entry.tagDigests.isEmpty {
            slot.flags.insert(.keptInFull)
            fullKeys[number] = storageKey
        }
        if index < slots.count {
            slots[index] = slot
        } else {
            slots.append(slot)
        }
        writeMetadata(of: entry, at: index)
        placeSealed(entry.sealedBytes, at: index)
        if newest >= 0 { slots[newest].newer = number }
        newest = index
        if oldest < 0 { oldest = index }
        withSlotTable { table, slots in table.insert(storageKey.w0, slot: index) { slots[$0].keyWord } }
        entryBytes += charge

        var keys = 0
        if plain {
            for prefix in further { keys += PartitionCharges.add(primary, under: prefix, in: &primariesByPrefix) }
        } else {
            var variants: Variants
            if let known = variantsByPrimary.removeValue(forKey: primary) {
                variants = known
            } else {
                variants = Variants(varyNames: varyNames, storageKeys: DigestSet(), prefixDigests: own)
                keys += PartitionCharges.variants(varyNames: varyNames, ownPrefixes: variants.prefixDigests.count)
                for prefix in variants.prefixDigests {
                    keys += PartitionCharges.add(primary, under: prefix, in: &primariesByPrefix)
                }
            }
            variants.storageKeys.insert(storageKey)
            variantsByPrimary[primary] = variants
        }
        for tag in entry.tagDigests { keys += PartitionCharges.add(storageKey, under: tag, in: &storageKeysByTag) }
        indexBytes += keys
        assert(usedBytes <= quotaBytes, "an entry was placed for more than `placement` said")
        return true
    }

    /// Replaces the entry of an existing variant in place (a 304 refresh), keeping its indexes; its
    /// tags are re-indexed when the refreshed entry has other ones. A refresh may grow the entry (a
    /// 304 may add fields and tags), so older entries are evicted until the quota holds again.
    /// False when the variant is gone, or is removed: its charge would no longer fit 32 bits, or it
    /// no longer fits the quota alone.
    public mutating func refresh(storageKey: KeyDigest, with entry: CacheEntry) -> Bool {
        shrinkIfSparse()  // first: it renumbers slots
        guard let slot = slot(of: storageKey) else { return false }
        let number = Int32(truncatingIfNeeded: slot)
        if slots[slot].flags.contains(.keptInFull), fullKeys[number] != storageKey { return false }
        let previous = self.entry(at: slot)
        let keepsInFull = !entry.tagDigests.isEmpty && !slots[slot].flags.contains(.keptInFull)
        let charge =
            Int(slots[slot].charge) - previous.chargedBytes + entry.chargedBytes
            + (keepsInFull ? PartitionCharges.slotRecord : 0)
        guard let slotCharge = UInt32(exactly: charge) else {
            removeSlot(slot)
            return false
        }
        let previousTags = previous.tagDigests
        if previousTags != entry.tagDigests {  // the 304 named other tags: a purge by either must find it right
            var keys = 0
            for tag in previousTags where !entry.tagDigests.contains(tag) {
                keys -= PartitionCharges.remove(storageKey, under: tag, in: &storageKeysByTag)
            }
            for tag in entry.tagDigests where !previousTags.contains(tag) {
                keys += PartitionCharges.add(storageKey, under: tag, in: &storageKeysByTag)
            }
            indexBytes += keys
            if keepsInFull {
                slots[slot].flags.insert(.keptInFull)
                fullKeys[number] = storageKey
            }
        }
        entryBytes += charge - Int(slots[slot].charge)
        slots[slot].charge = slotCharge
        writeMetadata(of: entry, at: slot)
        placeSealed(entry.sealedBytes, at: slot)
        touch(slot)
        while usedBytes > quotaBytes, oldest >= 0, oldest != slot, removeSlot(oldest) { evictions += 1 }
        guard usedBytes <= quotaBytes else {
            removeSlot(slot)
            return false
        }
        return true
    }

    /// Rewrites one entry (its bytes in a new slab record) without touching recency or indexes.
    /// Only for tests that prove tampered or moved values are refused.
    mutating func mutateEntry(storageKey: KeyDigest, _ body: (inout CacheEntry) -> Void) -> Bool {
        guard let slot = slot(of: storageKey) else { return false }
        var entry = self.entry(at: slot)
        body(&entry)
        writeMetadata(of: entry, at: slot)
        placeSealed(entry.sealedBytes, at: slot)
        return true
    }

    mutating func touch(_ index: Int) {
        guard newest != index else { return }
        unlink(index)
        slots[index].older = Int32(newest)
        slots[index].newer = -1
        if newest >= 0 { slots[newest].newer = Int32(index) }
        newest = index
        if oldest < 0 { oldest = index }
    }

    mutating func unlink(_ index: Int) {
        let (newer, older) = (Int(slots[index].newer), Int(slots[index].older))
        if newer >= 0 { slots[newer].older = Int32(older) } else { newest = older }
        if older >= 0 { slots[older].newer = Int32(newer) } else { oldest = newer }
        slots[index].newer = -1
        slots[index].older = -1
    }
}
