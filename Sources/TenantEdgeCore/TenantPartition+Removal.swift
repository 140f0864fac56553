/// What changes or drops a partition's stored bytes (`TenantPartition`): removals, purges, re-seals
/// and retired key versions, and the slabs' upkeep.
extension TenantPartition {
    /// Replaces an entry's sealed bytes (a re-seal under a newer key: same length, same metadata),
    /// only if it still holds `expected`; whether it did.
    public mutating func replaceSealed(storageKey: KeyDigest, expected: SealedBytes, with sealed: [UInt8]) -> Bool {
        guard let index = slot(of: storageKey), sealed.count == expected.count, slot(index, holds: expected) else {
            return false
        }
        placeSealed(SealedBytes(sealed), at: index)
        return true
    }

    /// Removes the entry under `storageKey` only if it still holds `expected` (an entry that failed
    /// to open: a re-seal may have replaced it meanwhile with one that opens); whether it did.
    public mutating func remove(storageKey: KeyDigest, ifStillHolding expected: SealedBytes) -> Bool {
        guard let index = slot(of: storageKey), slot(index, holds: expected) else { return false }
        return removeSlot(index)
    }

    /// Whether a slot's sealed bytes are `expected`'s, compared by content: a compaction may have
    /// moved them since `expected` was read, and a re-seal changes them.
    func slot(_ index: Int, holds expected: SealedBytes) -> Bool {
        slots[index].sealed.count == expected.count
            && slots[index].sealed.withBytes { stored in expected.withBytes { stored.elementsEqual($0) } }
    }

    /// The key version a slot's sealed value names in its first 4 bytes (big-endian); nil when shorter.
    func keyVersion(at index: Int) -> UInt32? {
        slots[index].sealed.withBytes { bytes -> UInt32? in
            guard bytes.count >= 4 else { return nil }
            return UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        }
    }

    /// How many entries are sealed under each key version (the first 4 bytes of a sealed value).
    public func entriesByKeyVersion() -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for index in slotTable.slots {
            guard let version = keyVersion(at: index) else { continue }
            counts[version, default: 0] += 1
        }
        return counts
    }

    /// Removes every entry sealed under a key version `keep` rejects (retired keys); how many.
    public mutating func removeAll(sealedUnderVersionNot keep: (UInt32) -> Bool) -> Int {
        let doomed = slotTable.slots.filter { index in keyVersion(at: index).map { !keep($0) } ?? false }
        return doomed.reduce(0) { $0 + (removeSlot($1) ? 1 : 0) }
    }

    /// Removes one stored variant; returns whether it was there.
    @discardableResult
    public mutating func remove(storageKey: KeyDigest) -> Bool {
        guard let index = slot(of: storageKey) else { return false }
        return removeSlot(index)
    }

    /// Removes the entry of slot `index`; whether it held one. Its indexes and metadata go at once;
    /// its sealed bytes stay, sealed and named by nothing, in their slab until that is compacted or
    /// freed (they cannot be wiped in place: a reader that copied the entry out of the lock may be
    /// opening them).
    @discardableResult
    mutating func removeSlot(_ index: Int) -> Bool {
        guard slots.indices.contains(index) else { return false }
        let removed = withSlotTable { table, slots in
            table.remove(slots[index].keyWord, slot: index) { slots[$0].keyWord }
        }
        guard removed else { return false }
        let number = Int32(truncatingIfNeeded: index)
        let slot = slots[index]
        unlink(index)
        entryBytes -= Int(slot.charge)
        let storageKey = slot.flags.contains(.keptInFull) ? fullKeys.removeValue(forKey: number) : nil
        let primary = slot.flags.contains(.variant) ? primaryOfVariant.removeValue(forKey: number) : storageKey
        let tags = slot.flags.contains(.tagged) ? tagsOfSlot.removeValue(forKey: number) ?? [] : []
        let further = slot.flags.contains(.moreOwnPrefixes) ? moreOwnPrefixes.removeValue(forKey: number) ?? [] : []
        if slot.flags.contains(.wideLifetime) { wideLifetimes[number] = nil }
        slots[index] = .free
        release(slot.sealed)
        directories.leave(slot: index)
        freeSlots.append(index)
        guard let storageKey, let primary else { return true }  // a plain entry without tags or further prefixes
        var keys = 0
        for tag in tags { keys += PartitionCharges.remove(storageKey, under: tag, in: &storageKeysByTag) }
        if !slot.flags.contains(.variant) {
            keys += unlinkPrefixes(further, of: primary)
        } else if var variants = variantsByPrimary.removeValue(forKey: primary) {
            variants.storageKeys.remove(storageKey)
            if variants.storageKeys.isEmpty {
                keys += unlinkPrefixes(variants.prefixDigests, of: primary)
                keys += PartitionCharges.variants(
                    varyNames: variants.varyNames, ownPrefixes: variants.prefixDigests.count)
            } else {
                variantsByPrimary[primary] = variants
            }
        }
        indexBytes -= keys
        return true
    }

    /// Takes `primary` out of each prefix's set: the bytes of the index keys that went.
    mutating func unlinkPrefixes(_ prefixes: [KeyDigest], of primary: KeyDigest) -> Int {
        prefixes.reduce(0) { $0 + PartitionCharges.remove(primary, under: $1, in: &primariesByPrefix) }
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

    /// Purges every cache key under a prefix: those indexed under its digest (`prefix`), and the
    /// one whose whole target it is (`target`: the prefix's primary digest). A plain entry is not
    /// indexed under its whole target, whose digest would name it a second time (decision 79).
    public mutating func removeAll(prefix: KeyDigest, asTarget target: KeyDigest) -> Int {
        removeAll(indexedUnder: prefix) + removeAll(primary: target)
    }

    /// Purges the cache keys indexed under a prefix digest: those whose own prefix it is and every
    /// entry of the directories under it, but not a plain entry whose whole target it is: only for
    /// callers that purge the prefix's primary too (`removeAll(prefix:asTarget:)`, a sibling's
    /// notice, which names it).
    mutating func removeAll(indexedUnder prefix: KeyDigest) -> Int {
        var removed = primariesByPrefix[prefix]?.members.reduce(0) { $0 + removeAll(primary: $1) } ?? 0
        for index in directories.slots(under: prefix) where removeSlot(index) { removed += 1 }
        return removed
    }

    /// Drops the whole partition; returns how many entries went.
    public mutating func removeAll() -> Int {
        let removed = count
        self = TenantPartition(quotaBytes: quotaBytes, compactionFloor: compactionFloor)
        return removed
    }

    /// `bytes` copied into a slab as the record of slot `index`.
    mutating func placed(_ bytes: SealedBytes, slot index: Int) -> SealedBytes {
        let (bytes, retired) = sealedSlabs.place(bytes, slot: index)
        if let retired { compact(retired) }
        return bytes
    }

    /// Stores `bytes` in slot `index`, in a slab, and lets the old record go. The slot lets go of
    /// its record before anything is placed: a compaction that placing or releasing sets off must
    /// not move the record this slot is about to stop naming.
    mutating func placeSealed(_ bytes: SealedBytes, at index: Int) {
        let old = slots[index].sealed
        slots[index].sealed = SealedBytes([])
        release(old)
        slots[index].sealed = placed(bytes, slot: index)
    }

    mutating func release(_ bytes: SealedBytes) {
        if let slab = sealedSlabs.release(bytes) { compact(slab) }
    }

    /// Copies the live records of a slab under half live into the slab being appended to; the old
    /// slab goes with the last reader still holding an entry copied out of it.
    mutating func compact(_ slab: SealedSlab) {
        for offset in slab.recordOffsets {
            let index = Int(slab.record(at: offset).slot)
            guard slots.indices.contains(index), slots[index].sealed.isRecord(offset, of: slab) else { continue }
            let moving = slots[index].sealed
            slots[index].sealed = SealedBytes([])  // as in `placeSealed`
            _ = sealedSlabs.release(moving)  // `slab` itself, being emptied now
            slots[index].sealed = placed(moving, slot: index)
        }
    }

    /// The live bytes and capacity of the slabs stored entries name: for tests of compaction, and
    /// for `edge-bench partition-memory`, which tells the slabs' slack (not charged) from the rest.
    public var slabSizes: (live: Int, allocated: Int) {
        var seen: [ObjectIdentifier: (Int, Int)] = [:]
        for index in slotTable.slots {
            guard let slab = slots[index].sealed.slab else { continue }
            seen[ObjectIdentifier(slab)] = (slab.liveBytes, slab.capacity)
        }
        return seen.values.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    }
}
