extension TenantPartition {
    /// Rebuilds every structure that entries have left under a quarter full (`SparseStorage`), before
    /// the partition may grow (at the start of `insert` and `refresh`): the slots (renumbered, with
    /// the directory groups, `renumberSlots`), the side tables and the indexes. The quota charges
    /// what is held, not room once used, so without this a tenant whose upstream changed the shape of
    /// its entries kept every table at its peak on top of a full quota. Nothing grows between two of
    /// these calls, so what a partition holds is at most what it was charged when it last grew, plus
    /// a table's room while it is at least a quarter full.
    ///
    /// The cost is all at once, under the tenant's lock and on the event loop that stores: 244 ms
    /// for 200,000 entries left of 1,000,000 (decision 81), after removals that held the lock five
    /// times as long. Moving a few slots per call instead would spread it; not done yet.
    mutating func shrinkIfSparse() {
        if SparseStorage.isSparse(count: count, capacity: slots.count, floor: compactionFloor) {
            renumberSlots()
        } else {
            SparseStorage.shrink(&fullKeys, floor: compactionFloor)
            SparseStorage.shrink(&primaryOfVariant, floor: compactionFloor)
            SparseStorage.shrink(&tagsOfSlot, floor: compactionFloor)
            SparseStorage.shrink(&moreOwnPrefixes, floor: compactionFloor)
            SparseStorage.shrink(&wideLifetimes, floor: compactionFloor)
        }
        SparseStorage.shrink(&variantsByPrimary, floor: compactionFloor)
        SparseStorage.shrink(&primariesByPrefix, floor: compactionFloor)
        SparseStorage.shrink(&storageKeysByTag, floor: compactionFloor)
        directories.shrinkIfSparse(floor: compactionFloor)
    }

    /// Numbers the stored entries 0, 1, … from the least recently used, in a slots array of their
    /// count, and moves everything that names a slot by number: the LRU links, the slot table, the
    /// side tables, the directory groups and the slab records' headers. O(entries held), which the
    /// three times as many removals since the array last grew have paid for.
    mutating func renumberSlots() {
        var order: [Int] = []
        order.reserveCapacity(count)
        var index = oldest
        while index >= 0, index < slots.count, order.count < slots.count {
            order.append(index)
            index = Int(slots[index].newer)
        }
        guard order.count == count else {
            // Cannot happen (every stored slot is in the LRU list): leave the partition as it is.
            assertionFailure("the LRU list holds \(order.count) slots, the slot table \(count)")
            return
        }
        var newNumber = [Int32](repeating: -1, count: slots.count)
        for (new, old) in order.enumerated() { newNumber[old] = Int32(new) }
        var kept: [Slot] = []
        kept.reserveCapacity(order.count)
        for (new, old) in order.enumerated() {
            var slot = slots[old]
            slot.older = Int32(new - 1)
            slot.newer = new + 1 < order.count ? Int32(new + 1) : -1
            if case .slab(let slab, let offset, _) = slot.sealed.storage {
                slab.renumber(recordAt: Int(offset), slot: Int32(new))
            }
            kept.append(slot)
        }
        func renumbered<Value>(_ table: [Int32: Value]) -> [Int32: Value] {
            var moved = [Int32: Value](minimumCapacity: table.count)
            for (old, value) in table where old >= 0 && Int(old) < newNumber.count && newNumber[Int(old)] >= 0 {
                moved[newNumber[Int(old)]] = value
            }
            return moved
        }
        fullKeys = renumbered(fullKeys)
        primaryOfVariant = renumbered(primaryOfVariant)
        tagsOfSlot = renumbered(tagsOfSlot)
        moreOwnPrefixes = renumbered(moreOwnPrefixes)
        wideLifetimes = renumbered(wideLifetimes)
        directories.renumberSlots(newNumber, slotCount: kept.count, floor: compactionFloor)
        var table = SlotTable()
        for (number, slot) in kept.enumerated() { table.insert(slot.keyWord, slot: number) { kept[$0].keyWord } }
        slots = kept
        slotTable = table
        freeSlots = []
        oldest = kept.isEmpty ? -1 : 0
        newest = kept.count - 1
    }

    /// Directories with entries, and own prefixes indexed: for tests of the index's upkeep.
    var indexSizes: (directories: Int, ownPrefixes: Int) {
        (directories.count, primariesByPrefix.count)
    }

    /// Side-table records held: for tests that removal leaves none behind.
    var sideRecords: Int {
        fullKeys.count + primaryOfVariant.count + tagsOfSlot.count + moreOwnPrefixes.count + wideLifetimes.count
    }

    /// Room held by the slots and the tables by slot number or digest: for tests that compaction
    /// keeps it within a few times what is stored.
    var capacities: (slots: Int, sideTables: Int, indexes: Int, directories: (groups: Int, slots: Int, keys: Int)) {
        (
            slots.capacity + freeSlots.capacity + slotTable.capacity,
            fullKeys.capacity + primaryOfVariant.capacity + tagsOfSlot.capacity + moreOwnPrefixes.capacity
                + wideLifetimes.capacity,
            variantsByPrimary.capacity + primariesByPrefix.capacity + storageKeysByTag.capacity,
            directories.capacities
        )
    }
}
