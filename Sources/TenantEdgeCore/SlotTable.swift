/// A partition's index from a 64-bit key (one word of a keyed digest) to slot numbers: open
/// addressing with linear probing, 8 bytes a bucket (a 32-bit fingerprint of the key and the slot
/// number), at most three quarters full.
///
/// The keys live in the slots, so the table holds none: `keyOf` gives a slot's key when the table
/// grows and when a removal shifts later entries back (no tombstones, so probes stay short however
/// many entries come and go), and a lookup's `matches` decides whether a slot whose fingerprint
/// matches is the one wanted. A `[KeyDigest: Int]` cost about 80 bytes an entry (40-byte buckets
/// with growth slack) and a SipHash of 32 bytes per lookup; this costs 11–21 bytes and a few
/// multiplications. Keys are words of keyed HMACs (`TenantCache`), so a client cannot choose them to
/// make probes long. The partition stores a key once (it removes a key's slot before storing the
/// key again); removals name the slot all the same, so a table whose keys repeat stays valid.
struct SlotTable {
    /// 0: empty; otherwise the fingerprint in the high half and the slot number + 1 in the low half.
    private var buckets: [UInt64] = []
    private(set) var count = 0
    /// Buckets held, full or empty.
    var capacity: Int { buckets.count }

    init() {}

    /// The first slot stored under `key` that `matches` accepts.
    func find(_ key: UInt64, where matches: (Int) -> Bool) -> Int? {
        position(of: key, where: matches).map { Int(buckets[$0] & 0xFFFF_FFFF) - 1 }
    }

    /// Stores `slot` under `key`. Slot numbers stay below 2³¹ (the partition's slots array).
    mutating func insert(_ key: UInt64, slot: Int, keyOf: (Int) -> UInt64) {
        precondition(slot >= 0 && slot < Int(Int32.max), "slot number out of range")
        if (count + 1) * 4 > buckets.count * 3 { grow(keyOf: keyOf) }
        place(Self.hash(key), slot: slot)
        count += 1
    }

    /// Removes the bucket holding `slot` under `key`; whether it was there.
    @discardableResult
    mutating func remove(_ key: UInt64, slot: Int, keyOf: (Int) -> UInt64) -> Bool {
        guard let position = position(of: key, where: { $0 == slot }) else { return false }
        removeBucket(at: position, keyOf: keyOf)
        return true
    }

    /// The bucket of the first slot under `key`'s fingerprint that `matches` accepts.
    private func position(of key: UInt64, where matches: (Int) -> Bool) -> Int? {
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
    private mutating func removeBucket(at position: Int, keyOf: (Int) -> UInt64) {
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

    private mutating func grow(keyOf: (Int) -> UInt64) {
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

    /// A multiply-xorshift finish, so the low bits pick the bucket and the high half is the
    /// fingerprint even for keys that differ only in a few bits (tests use small numbers).
    static func hash(_ key: UInt64) -> UInt64 {
        var value = key &* 0x9E37_79B9_7F4A_7C15
        value ^= value >> 29
        value = value &* 0xBF58_476D_1CE4_E5B9
        value ^= value >> 32
        return value
    }
}
