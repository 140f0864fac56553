/// A partition's index from storage digest to slot: open addressing with linear probing, 8 bytes a
/// bucket (a 32-bit fingerprint of the digest and the slot number), at most three quarters full.
///
/// The digests live in the slots, so the table holds none: `keyOf` gives a slot's digest when a
/// fingerprint matches, when the table grows, and when a removal shifts later entries back (no
/// tombstones, so probes stay short however many entries come and go). A `[KeyDigest: Int]` cost
/// about 80 bytes an entry (40-byte buckets with growth slack) and a SipHash of 32 bytes per lookup;
/// this costs 11–21 bytes and a few multiplications. Digests are keyed HMACs (`TenantCache`), so a
/// client cannot choose them to make probes long; the hash still mixes all four words, so digests
/// that differ in any word spread. The partition keeps a second one for plain entries' own prefixes,
/// read and written through the multimap calls (`slots(matching:keyOf:)`).
struct SlotTable {
    /// 0: empty; otherwise the fingerprint in the high half and the slot number + 1 in the low half.
    private var buckets: [UInt64] = []
    private(set) var count = 0

    init() {}

    /// The slot stored under `key`, if any.
    func find(_ key: KeyDigest, keyOf: (Int) -> KeyDigest) -> Int? {
        guard !buckets.isEmpty else { return nil }
        let hash = Self.hash(key)
        let fingerprint = hash >> 32
        let mask = buckets.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        while true {
            let bucket = buckets[position]
            if bucket == 0 { return nil }
            if bucket >> 32 == fingerprint {
                let slot = Int(bucket & 0xFFFF_FFFF) - 1
                if keyOf(slot) == key { return slot }
            }
            position = (position + 1) & mask
        }
    }

    /// Stores `slot` under `key`. As a map, `key` must not be in the table already (the partition
    /// removes a key before it stores it again); as a multimap, it may (see below). Slot numbers stay
    /// below 2³¹ (the partition's slots array).
    mutating func insert(_ key: KeyDigest, slot: Int, keyOf: (Int) -> KeyDigest) {
        precondition(slot >= 0 && slot < Int(Int32.max), "slot number out of range")
        if (count + 1) * 4 > buckets.count * 3 { grow(keyOf: keyOf) }
        place(Self.hash(key), slot: slot)
        count += 1
    }

    /// Removes `key`; its slot, or nil when it was not there.
    @discardableResult
    mutating func remove(_ key: KeyDigest, keyOf: (Int) -> KeyDigest) -> Int? {
        guard let position = position(of: key, where: { keyOf($0) == key }) else { return nil }
        let slot = Int(buckets[position] & 0xFFFF_FFFF) - 1
        removeBucket(at: position, keyOf: keyOf)
        return slot
    }

    // MARK: as a multimap

    /// Every slot stored under `key`. A table whose keys repeat is still a valid table, since `insert`
    /// never looks for its key: every slot stored under a key lies in the run from the key's home
    /// bucket to the next empty one. (Repeats make that run long: the partition's own-prefix index
    /// is keyed by one word of a keyed digest, which two slots share about once in 2⁶⁴ pairs, and
    /// reads and removes through these for that index's sake.)
    func slots(matching key: KeyDigest, keyOf: (Int) -> KeyDigest) -> [Int] {
        guard !buckets.isEmpty else { return [] }
        let hash = Self.hash(key)
        let mask = buckets.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        var found: [Int] = []
        while buckets[position] != 0 {
            let slot = Int(buckets[position] & 0xFFFF_FFFF) - 1
            if buckets[position] >> 32 == hash >> 32, keyOf(slot) == key { found.append(slot) }
            position = (position + 1) & mask
        }
        return found
    }

    /// Removes the one bucket holding `slot` under `key` (a multimap's member); whether it was there.
    @discardableResult
    mutating func remove(_ key: KeyDigest, slot: Int, keyOf: (Int) -> KeyDigest) -> Bool {
        guard let position = position(of: key, where: { $0 == slot }) else { return false }
        removeBucket(at: position, keyOf: keyOf)
        return true
    }

    /// The bucket of the first slot under `key`'s fingerprint that `matches` accepts.
    private func position(of key: KeyDigest, where matches: (Int) -> Bool) -> Int? {
        guard !buckets.isEmpty else { return nil }
        let hash = Self.hash(key)
        let mask = buckets.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        while buckets[position] != 0 {
            if buckets[position] >> 32 == hash >> 32, matches(Int(buckets[position] & 0xFFFF_FFFF) - 1) {
                return position
            }
            position = (position + 1) & mask
        }
        return nil
    }

    /// Empties `position` and shifts the rest of its run back: each later entry of the run moves
    /// into the hole when its home position is not cyclically between the hole and itself, so every
    /// probe still reaches it (no tombstones).
    private mutating func removeBucket(at position: Int, keyOf: (Int) -> KeyDigest) {
        let mask = buckets.count - 1
        var hole = position
        var next = (hole + 1) & mask
        while buckets[next] != 0 {
            let slot = Int(buckets[next] & 0xFFFF_FFFF) - 1
            let home = Int(truncatingIfNeeded: Self.hash(keyOf(slot))) & mask
            let distanceToNext = (next - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole <= distanceToNext {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = 0
        count -= 1
    }

    /// Every slot in the table, in no particular order.
    var slots: [Int] { buckets.compactMap { $0 == 0 ? nil : Int($0 & 0xFFFF_FFFF) - 1 } }

    private mutating func grow(keyOf: (Int) -> KeyDigest) {
        let old = buckets
        buckets = [UInt64](repeating: 0, count: max(16, old.count * 2))
        for bucket in old where bucket != 0 {
            let slot = Int(bucket & 0xFFFF_FFFF) - 1
            place(Self.hash(keyOf(slot)), slot: slot)
        }
    }

    private mutating func place(_ hash: UInt64, slot: Int) {
        let mask = buckets.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        while buckets[position] != 0 { position = (position + 1) & mask }
        buckets[position] = (hash >> 32) << 32 | UInt64(slot + 1)
    }

    /// All four words mixed (a multiply-xorshift finish), so the low bits pick the bucket and the
    /// high half is the fingerprint.
    static func hash(_ key: KeyDigest) -> UInt64 {
        var value = key.w0 ^ (key.w1 &* 0x9E37_79B9_7F4A_7C15) ^ (key.w2 &* 0xC2B2_AE3D_27D4_EB4F)
        value ^= key.w3 &* 0x1656_67B1_9E37_79F9
        value ^= value >> 29
        value = value &* 0xBF58_476D_1CE4_E5B9
        value ^= value >> 32
        return value
    }
}
