/// A bounded map that keeps what was used recently, for the per-address geo decisions: one hash
/// lookup on a hit, no list to maintain. It holds two generations: inserts go to `recent`; when
/// `recent` is full it becomes `older` and the previous `older` is dropped, and a hit in `older`
/// moves the entry back to `recent`. So an entry used at least once per `capacity / 2` inserts
/// stays, and at most `capacity` entries are held (the scheme of a two-generation "segmented" LRU).
public struct RecentlyUsedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    public let capacity: Int
    private var recent: [Key: Value] = [:]
    private var older: [Key: Value] = [:]

    /// - Parameter capacity: the most entries held; at least 2.
    /// - Parameter reserving: whether to reserve room for `capacity / 2` at once (a table made per
    ///   event loop, or one that may stay unused, grows as it fills instead).
    public init(capacity: Int, reserving: Bool = true) {
        self.capacity = max(2, capacity)
        if reserving { recent.reserveCapacity(self.capacity / 2) }
    }

    public var count: Int { recent.count + older.count }

    public mutating func value(for key: Key) -> Value? {
        if let value = recent[key] { return value }
        guard let value = older.removeValue(forKey: key) else { return nil }
        insert(value, for: key)
        return value
    }

    public mutating func insert(_ value: Value, for key: Key) {
        if recent[key] == nil && recent.count >= capacity / 2 {
            older = recent
            recent = Dictionary(minimumCapacity: capacity / 2)
        }
        recent[key] = value
    }

    public mutating func removeAll() {
        recent.removeAll(keepingCapacity: true)
        older.removeAll()
    }
}
