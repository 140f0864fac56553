/// One allocation holding the sealed bytes of many entries of one partition, one after another.
///
/// Why: a sealed value in an array of its own cost its 32-byte header and malloc's, and the
/// arrays, interleaved with the miss path's short-lived buffers, left free space malloc kept (309
/// bytes per entry of 606 in `make bench-memory`, decision 70). A slab is written once, front to
/// back, and never overwritten: a reader that copied a `CacheEntry` out of the partition's lock
/// reads its bytes after the lock is released while the partition appends further records behind
/// them, and the slab stays alive (reference counted) for as long as any entry names it.
///
/// Each record is an 8-byte header (the slot it belongs to, its length) and the bytes. The
/// partition counts the bytes of live records; when a slab other than the one it appends to falls
/// under half live by its capacity, the partition copies the live records out
/// (`TenantPartition.compact`) and the slab goes with the last entry that names it. So a slab's
/// dead and unwritten space is at most its live bytes, and every byte copied frees at least one.
///
/// `used` and `liveBytes` change only under the partition's lock; record bytes are written before
/// the entry naming them is published through that lock and never written again (a header's slot
/// number may be, under the lock: `renumber`).
final class SealedSlab: @unchecked Sendable {
    /// The header before each record: slot number (Int32), byte count (UInt32).
    static let recordHeaderBytes = 8
    /// The first slab of a partition; each next one is twice the last, up to `largestBytes`, so a
    /// tenant with a handful of entries does not hold 64 KiB.
    static let smallestBytes = 4 * 1024
    /// Below glibc's mmap threshold (128 KiB): a slab comes from the heap, not from a mapping.
    static let largestBytes = 64 * 1024

    let base: UnsafeMutableRawPointer
    let capacity: Int
    private(set) var used = 0
    /// Record bytes (headers included) whose entry is still stored.
    var liveBytes = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    /// Bytes a record of `count` sealed bytes takes.
    static func recordBytes(_ count: Int) -> Int { recordHeaderBytes + count }

    /// Appends a record; its offset (of the header), or nil when it does not fit.
    func append(_ bytes: UnsafeRawBufferPointer, slot: Int32) -> UInt32? {
        let size = Self.recordBytes(bytes.count)
        guard bytes.count <= Int(UInt32.max), size <= capacity - used else { return nil }
        let offset = used
        base.storeBytes(of: slot, toByteOffset: offset, as: Int32.self)
        base.storeBytes(of: UInt32(bytes.count), toByteOffset: offset + 4, as: UInt32.self)
        if let source = bytes.baseAddress {
            (base + offset + Self.recordHeaderBytes).copyMemory(from: source, byteCount: bytes.count)
        }
        used += size
        liveBytes += size
        return UInt32(offset)
    }

    /// Names another slot as the owner of the record at `offset`: the partition renumbered its slots
    /// (`TenantPartition.renumberSlots`). Only the header changes, under the partition's lock, where
    /// alone it is read (`compact`); a reader outside the lock reads only the bytes behind it. Dead
    /// records keep their old numbers, which may now name another slot: `compact` moves a record only
    /// when that slot's bytes are this very record (`SealedBytes.isRecord`).
    func renumber(recordAt offset: Int, slot: Int32) {
        guard offset >= 0, offset + Self.recordHeaderBytes <= used else { return }
        base.storeBytes(of: slot, toByteOffset: offset, as: Int32.self)
    }

    /// The record at `offset` (a header written by `append`): its slot and its bytes.
    func record(at offset: Int) -> (slot: Int32, bytes: UnsafeRawBufferPointer) {
        let slot = base.loadUnaligned(fromByteOffset: offset, as: Int32.self)
        let count = Int(base.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        return (slot, UnsafeRawBufferPointer(start: base + offset + Self.recordHeaderBytes, count: count))
    }

    /// Offsets of every record, oldest first.
    var recordOffsets: [Int] {
        var offsets: [Int] = []
        var offset = 0
        while offset < used {
            offsets.append(offset)
            offset += Self.recordBytes(record(at: offset).bytes.count)
        }
        return offsets
    }

    /// Whether the partition should copy the live records out of a slab it no longer appends to:
    /// under half of its capacity (room left unwritten counts as dead: a tiny record alone in a
    /// 64 KiB slab must not hold it).
    var isMostlyDead: Bool { liveBytes * 2 < capacity }
}
