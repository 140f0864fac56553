/// One tenant's L1 partition: an LRU of sealed entries within a byte quota, with the indexes that
/// make purges by key, tag and prefix proportional to what they remove, never a scan.
///
/// Not thread-safe (like groupcache's `lru`): `TenantCache` puts it behind a lock. Every operation
/// is O(1) apart from purges, which are O(entries removed).
///
/// Keys: a *primary* digest names the cache key (the request target); a *storage* digest names one
/// stored variant of it (equal to the primary unless the response had `Vary`). A target's directory
/// prefixes (`/`, `/v1`, `/v1/`) index it through its directory's group (`DirectoryGroups`, shared by
/// every entry of the directory); its own prefixes (the whole path and target) point at primaries,
/// except a plain entry's most specific one (its whole target), which points at its slot
/// (`slotsByOwnPrefix`).
/// Tag digests point at storage digests. A *plain* entry (stored under its primary, no `Vary`)
/// keeps its own prefix digests in its slot and has no `Variants` record: most entries are plain,
/// and the record cost about 180 bytes each (`make bench-memory`).
public struct TenantPartition {
    /// 152 bytes: a plain entry's primary is its storage key, so only a variant's is kept (in
    /// `primaryOfVariant`), the recency links are 32-bit (slot numbers stay below 2³¹,
    /// `SlotTable`), and the own prefix is one word of its digest. It was 224, the largest part of
    /// an entry's bookkeeping (`make bench-memory`), then 184, 192 and 176 (decisions 70 and 75).
    struct Slot {
        var storageKey: KeyDigest
        var entry: CacheEntry
        /// Bytes charged to the quota: the entry's own plus its share of the prefix index.
        var charge: Int
        var newer: Int32
        var older: Int32
        /// A plain entry's own prefix digests (not its directory's); none otherwise. The most
        /// specific (the whole target: no other plain entry has it, though its word may be shared)
        /// is the slot's key in `slotsByOwnPrefix`; the others (the path, when the target has a query) are in
        /// `primariesByPrefix`, which the query's siblings share. Only its first word
        /// (`ownPrefixWord(_:)`), 0 when there is none.
        var ownPrefix: UInt64
        var moreOwnPrefixes: [KeyDigest]
    }

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
    public private(set) var usedBytes = 0
    public private(set) var evictions = 0

    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var slotTable = SlotTable()
    /// The primary of each stored variant (a slot whose storage key is not its primary).
    private var primaryOfVariant: [KeyDigest: KeyDigest] = [:]
    private var newest = -1
    private var oldest = -1
    private var variantsByPrimary: [KeyDigest: Variants] = [:]
    private var primariesByPrefix: [KeyDigest: DigestSet] = [:]
    /// A plain entry's most specific own prefix → its slot. In `primariesByPrefix` each cost a
    /// 72-byte bucket with growth slack, about 150 bytes per entry (`make bench-memory`); here 8
    /// bytes a bucket, the key (one word of the digest, `ownPrefixWord(_:)`) read from the slot.
    /// Keyed by the whole target, not the path: the path is shared by every query of it, and a
    /// client could pile any number of `?n=…` under one key.
    private var slotsByOwnPrefix = SlotTable()
    private var storageKeysByTag: [KeyDigest: DigestSet] = [:]
    private var directories = DirectoryGroups()
    /// The entries' sealed bytes, in slabs rather than an array each (decision 70).
    private var sealedSlabs = SealedSlabStore()

    public init(quotaBytes: Int) { self.quotaBytes = quotaBytes }

    public var count: Int { slotTable.count }

    /// Runs `body` on one of the slot tables taken out of `self`, so it can read the slots while it
    /// changes (a closure reading `self.slots` during a mutation of `self.slotTable` is an overlapping
    /// access; a copy of `slots` kept alive would make the next slot write copy the whole array).
    private mutating func withTable<Result>(
        _ which: WritableKeyPath<TenantPartition, SlotTable>, _ body: (inout SlotTable, [Slot]) -> Result
    ) -> Result {
        var table = self[keyPath: which]
        self[keyPath: which] = SlotTable()
        defer { self[keyPath: which] = table }
        return body(&table, slots)
    }

    /// A slot's `ownPrefix` when it has none (a variant, or a plain entry without prefixes).
    static let noPrefix: UInt64 = 0

    /// The word a slot keeps of its own prefix's digest, and that `slotsByOwnPrefix` is keyed by:
    /// the first (a zero one as 1, so no digest reads as none). A whole digest took 32 bytes in
    /// every slot. Two targets' digests sharing it (keyed HMACs: about one pair in 2⁶⁴, and nobody
    /// without the tenant's key can choose one) only make a purge by one remove the other too:
    /// a purge never misses what it names.
    static func ownPrefixWord(_ digest: KeyDigest) -> UInt64 { digest.w0 == 0 ? 1 : digest.w0 }

    /// `slotsByOwnPrefix`'s key for a slot's word.
    private static func ownPrefixKey(_ word: UInt64) -> KeyDigest { KeyDigest(w0: word, w1: 0, w2: 0, w3: 0) }

    /// The slot holding `storageKey`, if any.
    private func slot(of storageKey: KeyDigest) -> Int? {
        slotTable.find(storageKey) { slots[$0].storageKey }
    }

    /// Directories with entries, and own prefixes indexed: for tests of the index's upkeep.
    var indexSizes: (directories: Int, ownPrefixes: Int) {
        (directories.count, primariesByPrefix.count + slotsByOwnPrefix.count)
    }

    /// Replaces an entry's sealed bytes (a re-seal under a newer key: same length, same metadata),
    /// only if it still holds `expected`; whether it did.
    public mutating func replaceSealed(storageKey: KeyDigest, expected: SealedBytes, with sealed: [UInt8]) -> Bool {
        guard let index = slot(of: storageKey), sealed.count == expected.count, slot(index, holds: expected) else {
            return false
        }
        var entry = slots[index].entry
        entry.sealed = sealed
        replaceEntry(at: index, with: entry)
        return true
    }

    /// Removes the entry under `storageKey` only if it still holds `expected` (an entry that failed
    /// to open: a re-seal may have replaced it meanwhile with one that opens); whether it did.
    public mutating func remove(storageKey: KeyDigest, ifStillHolding expected: SealedBytes) -> Bool {
        guard let index = slot(of: storageKey), slot(index, holds: expected) else { return false }
        return remove(storageKey: storageKey)
    }

    /// Whether a slot's sealed bytes are `expected`'s, compared by content: a compaction may have
    /// moved them since `expected` was read, and a re-seal changes them.
    private func slot(_ index: Int, holds expected: SealedBytes) -> Bool {
        slots[index].entry.sealedCount == expected.count
            && slots[index].entry.sealedBytes.withBytes { stored in expected.withBytes { stored.elementsEqual($0) } }
    }

    /// The entry stored under `storageKey`, leaving the LRU order alone.
    public func peek(storageKey: KeyDigest) -> CacheEntry? { slot(of: storageKey).map { slots[$0].entry } }

    /// How many entries are sealed under each key version (the first 4 bytes of a sealed value).
    public func entriesByKeyVersion() -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for index in slotTable.slots {
            guard let version = slots[index].entry.keyVersion else { continue }
            counts[version, default: 0] += 1
        }
        return counts
    }

    /// Removes every entry sealed under a key version `keep` rejects (retired keys); how many.
    public mutating func removeAll(sealedUnderVersionNot keep: (UInt32) -> Bool) -> Int {
        let doomed = slotTable.slots.compactMap { index -> KeyDigest? in
            guard let version = slots[index].entry.keyVersion else { return nil }
            return keep(version) ? nil : slots[index].storageKey
        }
        return doomed.reduce(0) { $0 + (remove(storageKey: $1) ? 1 : 0) }
    }

    /// Finds the entry for a primary key, marking it most recently used.
    /// A response without `Vary` is stored under its primary digest, and a primary's variants are
    /// either all without `Vary` (one, under the primary) or all with it (under variant digests;
    /// `insert` drops the others when the upstream changes its `Vary`), so the slot index answers
    /// the common case alone: one hash lookup, not two, which shows when a million entries no
    /// longer fit the CPU's caches.
    public mutating func lookup(primary: KeyDigest) -> Lookup {
        if let slot = slot(of: primary) {
            touch(slot)
            return .found(slots[slot].entry)
        }
        guard let variants = variantsByPrimary[primary] else { return .miss }
        if !variants.varyNames.isEmpty { return .needsVariant(varyNames: variants.varyNames) }
        return entry(storageKey: primary).map(Lookup.found) ?? .miss
    }

    /// Finds one stored variant, marking it most recently used.
    public mutating func entry(storageKey: KeyDigest) -> CacheEntry? {
        guard let slot = slot(of: storageKey) else { return nil }
        touch(slot)
        return slots[slot].entry
    }

    /// Stores an entry, evicting this tenant's least recently used entries until it fits its quota.
    /// Returns false, storing nothing, when the entry alone is larger than the quota.
    /// `prefixDigests`: the target's prefix digests, its `directoryPrefixes` first (the boundaries up
    /// to the path's last `/`, shallowest first, as `TenantCache.indexedPrefixes(of:)` gives them).
    @discardableResult
    public mutating func insert(
        _ entry: CacheEntry, primary: KeyDigest, storageKey: KeyDigest, varyNames: [String], prefixDigests: [KeyDigest],
        directoryPrefixes: Int = 0
    ) -> Bool {
        // The prefix index lives outside the entry but is this tenant's memory: charged with it.
        let charge = entry.chargedBytes + prefixDigests.count * 48
        guard charge <= quotaBytes else { return false }
        // A response that varies is never stored under its primary digest: `lookup` serves what
        // it finds there to any request (an L2 directory that says otherwise is refused here).
        guard varyNames.isEmpty || storageKey != primary else { return false }
        let plain = storageKey == primary
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
        while usedBytes + charge > quotaBytes, oldest >= 0 {
            remove(storageKey: slots[oldest].storageKey)
            evictions += 1
        }
        let index = freeSlots.popLast() ?? slots.count
        let directoryCount = min(max(directoryPrefixes, 0), prefixDigests.count)
        let joined =
            directoryCount > 0
            && directories.join(slot: index, directoryPrefixes: Array(prefixDigests[..<directoryCount]))
        let own = joined ? Array(prefixDigests[directoryCount...]) : prefixDigests
        let slot = Slot(
            storageKey: storageKey, entry: placed(entry, slot: index), charge: charge, newer: -1, older: Int32(newest),
            ownPrefix: plain ? own.last.map(Self.ownPrefixWord) ?? Self.noPrefix : Self.noPrefix,
            moreOwnPrefixes: plain ? Array(own.dropLast()) : [])
        if index < slots.count {
            slots[index] = slot
        } else {
            slots.append(slot)
        }
        if newest >= 0 { slots[newest].newer = Int32(index) }
        newest = index
        if oldest < 0 { oldest = index }
        if !plain { primaryOfVariant[storageKey] = primary }
        withTable(\.slotTable) { table, slots in table.insert(storageKey, slot: index) { slots[$0].storageKey } }
        usedBytes += charge

        if plain {
            if let target = own.last {
                withTable(\.slotsByOwnPrefix) { table, slots in
                    table.insert(Self.ownPrefixKey(Self.ownPrefixWord(target)), slot: index) {
                        Self.ownPrefixKey(slots[$0].ownPrefix)
                    }
                }
            }
            for prefix in own.dropLast() { primariesByPrefix[prefix, default: DigestSet()].insert(primary) }
        } else {
            var variants =
                variantsByPrimary.removeValue(forKey: primary)
                ?? Variants(varyNames: varyNames, storageKeys: DigestSet(), prefixDigests: own)
            if variants.storageKeys.isEmpty {
                for prefix in variants.prefixDigests { primariesByPrefix[prefix, default: DigestSet()].insert(primary) }
            }
            variants.storageKeys.insert(storageKey)
            variantsByPrimary[primary] = variants
        }
        for tag in entry.tagDigests { storageKeysByTag[tag, default: DigestSet()].insert(storageKey) }
        return true
    }

    /// Replaces the entry of an existing variant in place (a 304 refresh), keeping its indexes; its
    /// tags are re-indexed when the refreshed entry has other ones. False when the variant is gone.
    public mutating func refresh(storageKey: KeyDigest, with entry: CacheEntry) -> Bool {
        guard let slot = slot(of: storageKey) else { return false }
        let previousTags = slots[slot].entry.tagDigests
        if previousTags != entry.tagDigests {  // the 304 named other tags: a purge by either must find it right
            for tag in previousTags where !entry.tagDigests.contains(tag) {
                storageKeysByTag[tag]?.remove(storageKey)
                if storageKeysByTag[tag]?.isEmpty == true { storageKeysByTag[tag] = nil }
            }
            for tag in entry.tagDigests where !previousTags.contains(tag) {
                storageKeysByTag[tag, default: DigestSet()].insert(storageKey)
            }
        }
        let charge = slots[slot].charge - slots[slot].entry.chargedBytes + entry.chargedBytes
        usedBytes += charge - slots[slot].charge
        slots[slot].charge = charge
        replaceEntry(at: slot, with: entry)
        touch(slot)
        return true
    }

    /// Rewrites one entry (its bytes in a new slab record) without touching recency or indexes.
    /// Only for tests that prove tampered or moved values are refused.
    mutating func mutateEntry(storageKey: KeyDigest, _ body: (inout CacheEntry) -> Void) -> Bool {
        guard let slot = slot(of: storageKey) else { return false }
        var entry = slots[slot].entry
        body(&entry)
        replaceEntry(at: slot, with: entry)
        return true
    }

    /// Removes one stored variant; returns whether it was there. The slot's indexes and metadata
    /// go at once; its sealed bytes stay, sealed and named by nothing, in their slab until that is
    /// compacted or freed (they cannot be wiped in place: a reader that copied the entry out of the
    /// lock may be opening them).
    @discardableResult
    public mutating func remove(storageKey: KeyDigest) -> Bool {
        guard let index = withTable(\.slotTable, { table, slots in table.remove(storageKey) { slots[$0].storageKey } })
        else { return false }
        let slot = slots[index]
        let primary = primaryOfVariant.removeValue(forKey: storageKey) ?? storageKey
        unlink(index)
        usedBytes -= slot.charge
        if primary == storageKey, slot.ownPrefix != Self.noPrefix {  // before the slot forgets its key
            withTable(\.slotsByOwnPrefix) { table, slots in
                table.remove(Self.ownPrefixKey(slot.ownPrefix), slot: index) { Self.ownPrefixKey(slots[$0].ownPrefix) }
            }
        }
        slots[index].entry.sealedBytes = SealedBytes([])
        release(slot.entry.sealedBytes)
        slots[index].entry.tagDigests = []
        slots[index].ownPrefix = Self.noPrefix
        slots[index].moreOwnPrefixes = []
        directories.leave(slot: index)
        freeSlots.append(index)
        for tag in slot.entry.tagDigests {
            storageKeysByTag[tag]?.remove(storageKey)
            if storageKeysByTag[tag]?.isEmpty == true { storageKeysByTag[tag] = nil }
        }
        if primary == storageKey {
            unlinkPrefixes(slot.moreOwnPrefixes, of: primary)
        } else if var variants = variantsByPrimary.removeValue(forKey: primary) {
            variants.storageKeys.remove(storageKey)
            if variants.storageKeys.isEmpty {
                unlinkPrefixes(variants.prefixDigests, of: primary)
            } else {
                variantsByPrimary[primary] = variants
            }
        }
        return true
    }

    private mutating func unlinkPrefixes(_ prefixes: [KeyDigest], of primary: KeyDigest) {
        for prefix in prefixes {
            primariesByPrefix[prefix]?.remove(primary)
            if primariesByPrefix[prefix]?.isEmpty == true { primariesByPrefix[prefix] = nil }
        }
    }

    /// Purges every variant of one cache key (its plain entry, or its variants); how many went.
    @discardableResult
    public mutating func removeAll(primary: KeyDigest) -> Int {
        var removed = remove(storageKey: primary) ? 1 : 0
        if let variants = variantsByPrimary[primary] {
            removed += variants.storageKeys.members.reduce(0) { $0 + (remove(storageKey: $1) ? 1 : 0) }
        }
        return removed
    }

    /// Purges every entry tagged `tag`.
    public mutating func removeAll(tag: KeyDigest) -> Int {
        guard let keys = storageKeysByTag[tag] else { return 0 }
        return keys.members.reduce(0) { $0 + (remove(storageKey: $1) ? 1 : 0) }
    }

    /// Purges every cache key under a prefix digest: those whose own prefix it is, and every entry
    /// of the directories under it.
    public mutating func removeAll(prefix: KeyDigest) -> Int {
        var removed = primariesByPrefix[prefix]?.members.reduce(0) { $0 + removeAll(primary: $1) } ?? 0
        let plainTargets = slotsByOwnPrefix.slots(matching: Self.ownPrefixKey(Self.ownPrefixWord(prefix))) {
            Self.ownPrefixKey(slots[$0].ownPrefix)
        }
        for storageKey in plainTargets.map({ slots[$0].storageKey }) where remove(storageKey: storageKey) {
            removed += 1
        }
        let inDirectories = directories.slots(under: prefix).map { slots[$0].storageKey }
        for storageKey in inDirectories where remove(storageKey: storageKey) { removed += 1 }
        return removed
    }

    /// Drops the whole partition; returns how many entries went.
    public mutating func removeAll() -> Int {
        let removed = count
        self = TenantPartition(quotaBytes: quotaBytes)
        return removed
    }

    /// `entry` with its sealed bytes copied into a slab as the record of slot `index`.
    private mutating func placed(_ entry: CacheEntry, slot index: Int) -> CacheEntry {
        var entry = entry
        let (bytes, retired) = sealedSlabs.place(entry.sealedBytes, slot: index)
        entry.sealedBytes = bytes
        if let retired { compact(retired) }
        return entry
    }

    /// Stores `entry` in the existing slot `index`, its bytes in a slab, and lets the old record go.
    /// The slot lets go of its record before anything is placed: a compaction that placing or
    /// releasing sets off must not move the record this slot is about to stop naming.
    private mutating func replaceEntry(at index: Int, with entry: CacheEntry) {
        let old = slots[index].entry.sealedBytes
        slots[index].entry.sealedBytes = SealedBytes([])
        release(old)
        slots[index].entry = placed(entry, slot: index)
    }

    private mutating func release(_ bytes: SealedBytes) {
        if let slab = sealedSlabs.release(bytes) { compact(slab) }
    }

    /// Copies the live records of a slab under half live into the slab being appended to; the old
    /// slab goes with the last reader still holding an entry copied out of it.
    private mutating func compact(_ slab: SealedSlab) {
        for offset in slab.recordOffsets {
            let index = Int(slab.record(at: offset).slot)
            guard slots.indices.contains(index), slots[index].entry.sealedBytes.isRecord(offset, of: slab) else {
                continue
            }
            let moving = slots[index].entry
            slots[index].entry.sealedBytes = SealedBytes([])  // as in `replaceEntry`
            _ = sealedSlabs.release(moving.sealedBytes)  // `slab` itself, being emptied now
            slots[index].entry = placed(moving, slot: index)
        }
    }

    /// The live bytes and capacity of the slabs stored entries name, for tests of compaction.
    var slabSizes: (live: Int, allocated: Int) {
        var seen: [ObjectIdentifier: (Int, Int)] = [:]
        for index in slotTable.slots {
            guard let slab = slots[index].entry.sealedBytes.slab else { continue }
            seen[ObjectIdentifier(slab)] = (slab.liveBytes, slab.capacity)
        }
        return seen.values.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    }

    private mutating func touch(_ index: Int) {
        guard newest != index else { return }
        unlink(index)
        slots[index].older = Int32(newest)
        slots[index].newer = -1
        if newest >= 0 { slots[newest].newer = Int32(index) }
        newest = index
        if oldest < 0 { oldest = index }
    }

    private mutating func unlink(_ index: Int) {
        let (newer, older) = (Int(slots[index].newer), Int(slots[index].older))
        if newer >= 0 { slots[newer].older = Int32(older) } else { newest = older }
        if older >= 0 { slots[older].newer = Int32(newer) } else { oldest = newer }
        slots[index].newer = -1
        slots[index].older = -1
    }
}
