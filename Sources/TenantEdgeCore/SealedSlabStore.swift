/// Where one partition's sealed bytes go: the slab it appends to, and which slabs have fallen
/// under half live (`SealedSlab`). It only places and counts; the partition, which knows the slots,
/// copies a mostly dead slab's live records out (`TenantPartition.compact`).
///
/// Invariant after every call and its compaction: every slab an entry names, other than the one
/// being appended to, is at least half live by its capacity (a slab left with room it will never
/// use counts that room as dead), so slab memory is at most twice the live bytes plus one slab.
struct SealedSlabStore {
    private var appending: SealedSlab?
    private var nextSlabBytes = SealedSlab.smallestBytes

    /// Copies `bytes` into a slab as the record of `slot`. Also returns the slab it stopped
    /// appending to when that one is mostly dead (records removed while it was being filled): the
    /// caller compacts it. Keeps `bytes` as they are in the one case no slab can hold them (over
    /// 4 GiB, which no quota admits).
    mutating func place(_ bytes: SealedBytes, slot: Int) -> (placed: SealedBytes, retired: SealedSlab?) {
        let size = SealedSlab.recordBytes(bytes.count)
        let count = UInt32(truncatingIfNeeded: bytes.count)
        let slotNumber = Int32(truncatingIfNeeded: slot)  // below 2³¹: `SlotTable` numbers slots in 32 bits
        if size > SealedSlab.largestBytes {
            // a large entry gets a slab of its own, which goes when the entry does
            let slab = SealedSlab(capacity: size)
            guard let offset = bytes.withBytes({ slab.append($0, slot: slotNumber) }) else { return (bytes, nil) }
            return (SealedBytes(slab: slab, offset: offset, count: count), nil)
        }
        if let slab = appending, let offset = bytes.withBytes({ slab.append($0, slot: slotNumber) }) {
            return (SealedBytes(slab: slab, offset: offset, count: count), nil)
        }
        let retired = appending.flatMap { $0.isMostlyDead ? $0 : nil }
        let slab = SealedSlab(capacity: max(nextSlabBytes, size))
        nextSlabBytes = min(nextSlabBytes * 2, SealedSlab.largestBytes)
        appending = slab
        guard let offset = bytes.withBytes({ slab.append($0, slot: slotNumber) }) else { return (bytes, retired) }
        return (SealedBytes(slab: slab, offset: offset, count: count), retired)
    }

    /// Forgets the record `bytes` names (its entry was removed or replaced). Returns its slab when
    /// that has now fallen under half live and is not the one being appended to: the caller
    /// compacts it.
    mutating func release(_ bytes: SealedBytes) -> SealedSlab? {
        guard case .slab(let slab, _, let count) = bytes.storage else { return nil }
        slab.liveBytes -= SealedSlab.recordBytes(Int(count))
        return slab !== appending && slab.isMostlyDead ? slab : nil
    }
}
