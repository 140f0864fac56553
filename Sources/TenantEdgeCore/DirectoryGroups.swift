/// The directory part of a partition's prefix index. Every target is indexed under each of its
/// path-segment boundaries (`/`, `/v1`, `/v1/`, …), and all the entries of one directory share those
/// prefixes: so entries are grouped by directory, each group holding its prefix digests once and its
/// members in a list threaded through per-slot arrays, and a prefix names the groups under it.
///
/// Indexing each entry under each of its directory prefixes cost a set member (32 bytes plus the
/// set's slack) per prefix and a copy of the digests per entry; with groups (a member costs 12
/// bytes) an entry took 844 bytes beyond its sealed bytes instead of 1,003 (`make bench-memory`,
/// 1 KiB entries at `/m/N`). Joining and leaving are O(1); a purge visits only the members of the
/// groups under its prefix.
struct DirectoryGroups {
    private struct Group {
        /// The directory's prefix digests, shallowest first; the last names the directory itself.
        var prefixes: [KeyDigest]
        var first: Int32 = -1
        var members = 0
    }

    private var groups: [Group] = []
    private var freeGroups: [Int32] = []
    private var groupByDirectory: [KeyDigest: Int32] = [:]
    private var groupsByPrefix: [KeyDigest: Set<Int32>] = [:]
    /// Per slot of the partition: its group (-1: none) and its neighbours in the group's list.
    private var groupOfSlot: [Int32] = []
    private var nextInGroup: [Int32] = []
    private var previousInGroup: [Int32] = []

    /// Groups held (directories with at least one entry).
    var count: Int { groupByDirectory.count }

    /// Bytes the groups and their prefixes' keys are charged while they exist (`PartitionCharges`).
    private(set) var chargedBytes = 0

    /// Whether `join` would put a slot in a group with these prefixes: false only when their
    /// directory's digest names another group's directory (a collision). Read before a partition
    /// charges an entry, which must know whether the directory's prefixes are its own.
    func accepts(directoryPrefixes prefixes: [KeyDigest]) -> Bool {
        guard let directory = prefixes.last else { return false }
        return groupByDirectory[directory].map { groups[Int($0)].prefixes == prefixes } ?? true
    }

    /// Puts `slot` in the group of the directory whose prefix digests are `prefixes` (shallowest
    /// first). False, joining nothing, when the digests name no directory (empty) or another group's
    /// directory with other prefixes (a digest collision): the caller indexes them on their own.
    mutating func join(slot: Int, directoryPrefixes prefixes: [KeyDigest]) -> Bool {
        guard let directory = prefixes.last, slot >= 0, slot < Int(Int32.max) else { return false }
        leave(slot: slot)  // first: leaving may drop the very group it would join
        let group: Int32
        if let known = groupByDirectory[directory] {
            guard groups[Int(known)].prefixes == prefixes else { return false }
            group = known
        } else {
            group = makeGroup(prefixes)
        }
        while groupOfSlot.count <= slot {
            groupOfSlot.append(-1)
            nextInGroup.append(-1)
            previousInGroup.append(-1)
        }
        let member = Int32(slot)
        let first = groups[Int(group)].first
        groupOfSlot[slot] = group
        previousInGroup[slot] = -1
        nextInGroup[slot] = first
        if first >= 0 { previousInGroup[Int(first)] = member }
        groups[Int(group)].first = member
        groups[Int(group)].members += 1
        return true
    }

    /// Takes `slot` out of its group, if it has one; a group left empty goes with its index.
    mutating func leave(slot: Int) {
        guard slot >= 0, slot < groupOfSlot.count, groupOfSlot[slot] >= 0 else { return }
        let group = Int(groupOfSlot[slot])
        let (previous, next) = (previousInGroup[slot], nextInGroup[slot])
        if previous >= 0 { nextInGroup[Int(previous)] = next } else { groups[group].first = next }
        if next >= 0 { previousInGroup[Int(next)] = previous }
        groupOfSlot[slot] = -1
        nextInGroup[slot] = -1
        previousInGroup[slot] = -1
        groups[group].members -= 1
        if groups[group].members == 0 { dropGroup(Int32(group)) }
    }

    /// What a slot joining the group of `prefixes` adds to `chargedBytes`: nothing when the group
    /// exists, else the group and the keys it makes (`asIfEmpty`: as if none existed).
    func cost(ofJoining prefixes: [KeyDigest], asIfEmpty: Bool) -> Int {
        guard let directory = prefixes.last else { return 0 }
        if !asIfEmpty && groupByDirectory[directory] != nil { return 0 }
        let newKeys = asIfEmpty ? prefixes.count : prefixes.count { groupsByPrefix[$0] == nil }
        return PartitionCharges.group(prefixes: prefixes.count)
            + newKeys * PartitionCharges.indexKey
    }

    /// `chargedBytes` worked out again from the groups and keys held (for tests).
    var recountedChargedBytes: Int {
        let groupsHeld = groupByDirectory.values.reduce(0) {
            $0 + PartitionCharges.group(prefixes: groups[Int($1)].prefixes.count)
        }
        return groupsHeld + groupsByPrefix.count * PartitionCharges.indexKey
    }

    /// The slots of every group under `prefix`.
    func slots(under prefix: KeyDigest) -> [Int] {
        guard let under = groupsByPrefix[prefix] else { return [] }
        var result: [Int] = []
        for group in under {
            var member = groups[Int(group)].first
            while member >= 0 {
                result.append(Int(member))
                member = nextInGroup[Int(member)]
            }
        }
        return result
    }

    /// Moves every member to its slot's new number (`newNumber[old]`; the partition renumbered its
    /// slots, `TenantPartition.renumberSlots`), in per-slot arrays sized to `slotCount`; and, when
    /// under a quarter of the groups are held (`SparseStorage`), renumbers the groups too. Only here,
    /// where every slot is visited anyway: on its own, dropping a hundred short-lived directories
    /// would pay for a pass over a million slots. Free groups are reused meanwhile (`makeGroup`).
    mutating func renumberSlots(_ newNumber: [Int32], slotCount: Int, floor: Int) {
        func moved(_ old: Int32) -> Int32 {
            old >= 0 && Int(old) < newNumber.count ? newNumber[Int(old)] : -1
        }
        var newGroup: [Int32]? = nil
        if SparseStorage.isSparse(count: count, capacity: groups.count, floor: floor) {
            var numbers = [Int32](repeating: -1, count: groups.count)
            var kept: [Group] = []
            kept.reserveCapacity(count)
            for (index, group) in groups.enumerated() where group.members > 0 {
                numbers[index] = Int32(kept.count)
                kept.append(group)
            }
            groups = kept
            freeGroups = []
            groupByDirectory = groupByDirectory.mapValues { numbers[Int($0)] }
            groupsByPrefix = groupsByPrefix.mapValues { Set($0.lazy.map { numbers[Int($0)] }) }
            newGroup = numbers
        }
        var (group, next, previous) = ([Int32](), [Int32](), [Int32]())
        if groupOfSlot.contains(where: { $0 >= 0 }) {
            group = [Int32](repeating: -1, count: slotCount)
            (next, previous) = (group, group)
            for old in groupOfSlot.indices where groupOfSlot[old] >= 0 {
                let new = Int(moved(Int32(old)))
                guard new >= 0, new < slotCount else {
                    assertionFailure("slot \(old) is in a group but was not kept")
                    continue
                }
                let held = groupOfSlot[old]
                group[new] = newGroup.map { $0[Int(held)] } ?? held
                (next[new], previous[new]) = (moved(nextInGroup[old]), moved(previousInGroup[old]))
            }
        }
        (groupOfSlot, nextInGroup, previousInGroup) = (group, next, previous)
        for index in groups.indices { groups[index].first = moved(groups[index].first) }
    }

    /// Rebuilds the two indexes when their keys have left them under a quarter full.
    mutating func shrinkIfSparse(floor: Int) {
        SparseStorage.shrink(&groupByDirectory, floor: floor)
        SparseStorage.shrink(&groupsByPrefix, floor: floor)
    }

    /// Room held for groups, slots and index keys: for tests that compaction bounds it.
    var capacities: (groups: Int, slots: Int, keys: Int) {
        (groups.capacity, groupOfSlot.capacity, groupByDirectory.capacity + groupsByPrefix.capacity)
    }

    private mutating func makeGroup(_ prefixes: [KeyDigest]) -> Int32 {
        let group: Int32
        if let free = freeGroups.popLast() {
            groups[Int(free)] = Group(prefixes: prefixes)
            group = free
        } else {
            groups.append(Group(prefixes: prefixes))
            group = Int32(groups.count - 1)
        }
        groupByDirectory[prefixes[prefixes.count - 1]] = group
        chargedBytes += PartitionCharges.group(prefixes: prefixes.count)
        for prefix in prefixes {
            if groupsByPrefix[prefix]?.insert(group) == nil {
                groupsByPrefix[prefix] = [group]
                chargedBytes += PartitionCharges.indexKey
            }
        }
        return group
    }

    private mutating func dropGroup(_ group: Int32) {
        let prefixes = groups[Int(group)].prefixes
        for prefix in prefixes {
            guard var under = groupsByPrefix.removeValue(forKey: prefix) else { continue }
            under.remove(group)
            if under.isEmpty {
                chargedBytes -= PartitionCharges.indexKey
            } else {
                SparseStorage.shrink(&under)
                groupsByPrefix[prefix] = under
            }
        }
        chargedBytes -= PartitionCharges.group(prefixes: prefixes.count)
        if let directory = prefixes.last { groupByDirectory[directory] = nil }
        groups[Int(group)] = Group(prefixes: [])
        freeGroups.append(group)
    }
}
