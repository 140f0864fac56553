/// When a partition rebuilds a table that members have left.
///
/// Swift's arrays, sets and dictionaries keep their storage as elements go. A partition charges its
/// quota for the entries and index keys it holds (`PartitionCharges`), not for room once used: so a
/// tenant whose upstream filled the quota with one shape (64 tags an entry, then tiny entries, then
/// variants) would keep every table at its peak and hold several quotas' worth. A table under a
/// quarter full is rebuilt to its size; each rebuild is paid for by the removals that emptied it
/// (at least three times as many as it copies), so it is amortised O(1) a removal.
enum SparseStorage {
    /// Whether a table holding `count` with room for `capacity` is worth rebuilding: under a
    /// quarter full, and with room for at least `floor` (smaller tables are not worth an allocation).
    static func isSparse(count: Int, capacity: Int, floor: Int) -> Bool {
        capacity >= floor && count < capacity / 4
    }

    /// Sets inside an index (a tag's members, a prefix's groups) are rebuilt from this much room on.
    static let setFloor = 16

    /// Rebuilds `table` in storage sized to it when it is sparse.
    static func shrink<Key, Value>(_ table: inout [Key: Value], floor: Int) {
        guard isSparse(count: table.count, capacity: table.capacity, floor: floor) else { return }
        table = Dictionary(fresh: table)
    }

    /// Rebuilds `set` in storage sized to it when it is sparse (called as its members leave).
    static func shrink<Member>(_ set: inout Set<Member>, floor: Int = setFloor) {
        guard isSparse(count: set.count, capacity: set.capacity, floor: floor) else { return }
        set = Set(fresh: set)
    }
}

extension Set {
    /// The same members in storage sized to them (`Set(other)` would share the old storage).
    init(fresh other: Set) {
        self.init(minimumCapacity: other.count)
        for member in other { insert(member) }
    }
}

extension Dictionary {
    /// The same pairs in storage sized to them.
    init(fresh other: Dictionary) {
        self.init(minimumCapacity: other.count)
        for (key, value) in other { self[key] = value }
    }
}
