/// A set of key digests that holds one member without a heap allocation. In a partition most
/// primaries have one stored variant, and a target's own path is the prefix of that one primary:
/// a `Set` for each would cost an allocation of about 150 bytes per entry (measured by
/// `make bench-memory`), more than all the other bookkeeping of an entry.
struct DigestSet {
    private enum Storage {
        case empty
        case one(KeyDigest)
        case many(Set<KeyDigest>)
    }

    private var storage = Storage.empty

    var isEmpty: Bool {
        switch storage {
        case .empty: true
        case .one: false
        case .many(let set): set.isEmpty
        }
    }

    var count: Int {
        switch storage {
        case .empty: 0
        case .one: 1
        case .many(let set): set.count
        }
    }

    /// Members it has room for without growing: for tests that a set shrinks as members go.
    var capacity: Int {
        switch storage {
        case .empty: 0
        case .one: 1
        case .many(let set): set.capacity
        }
    }

    func contains(_ digest: KeyDigest) -> Bool {
        switch storage {
        case .empty: false
        case .one(let member): member == digest
        case .many(let set): set.contains(digest)
        }
    }

    /// The members, for the purge paths (which remove them, so they iterate over a copy).
    var members: [KeyDigest] {
        switch storage {
        case .empty: []
        case .one(let member): [member]
        case .many(let set): Array(set)
        }
    }

    mutating func insert(_ digest: KeyDigest) {
        switch storage {
        case .empty: storage = .one(digest)
        case .one(let member) where member != digest: storage = .many([member, digest])
        case .one: break
        case .many(var set):
            storage = .empty  // the set uniquely referenced while it grows
            set.insert(digest)
            storage = .many(set)
        }
    }

    mutating func remove(_ digest: KeyDigest) {
        switch storage {
        case .empty: break
        case .one(let member): if member == digest { storage = .empty }
        case .many(var set):
            storage = .empty
            set.remove(digest)
            if set.count == 1, let only = set.first {
                storage = .one(only)
            } else if !set.isEmpty {
                // A set keeps its storage as members go: one that held a thousand digests and holds
                // ten is rebuilt, so what a partition holds stays within a few times what it charges.
                SparseStorage.shrink(&set)
                storage = .many(set)
            }
        }
    }
}
