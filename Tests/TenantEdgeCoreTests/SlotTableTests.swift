import Testing

@testable import TenantEdgeCore

/// The partition's slot index against a `Dictionary` model: seeded inserts and removals (with runs
/// long enough to wrap the table and shift entries back on removal), digests random or differing
/// in one word only.
@Suite("Slot table")
struct SlotTableTests {
    @Test(arguments: [UInt64(1), 2, 3])
    func findsWhatADictionaryWouldThroughInsertsRemovalsAndGrowth(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var table = SlotTable()
        var model: [KeyDigest: Int] = [:]
        var keys: [KeyDigest] = []  // slot → key, as a partition's slots hold them
        func key(_ slot: Int) -> KeyDigest { keys[slot] }
        for step in 0..<40_000 {
            if model.isEmpty || Int.random(in: 0..<10, using: &random) < 6 {
                let digest =
                    seed == 3
                    ? KeyDigest(w0: 0, w1: 0, w2: UInt64(keys.count), w3: 0)  // one word differs
                    : KeyDigest(
                        w0: .random(in: 0...UInt64.max, using: &random),
                        w1: .random(in: 0...UInt64.max, using: &random),
                        w2: 0, w3: 7)
                keys.append(digest)
                table.insert(digest, slot: keys.count - 1, keyOf: key)
                model[digest] = keys.count - 1
            } else {
                let victim = model.randomElement(using: &random)!
                #expect(table.remove(victim.key, keyOf: key) == victim.value, "step \(step)")
                model[victim.key] = nil
                #expect(table.remove(victim.key, keyOf: key) == nil, "removed twice at step \(step)")
            }
            #expect(table.count == model.count)
            if step % 997 == 0 {
                for (digest, slot) in model { #expect(table.find(digest, keyOf: key) == slot, "step \(step)") }
                #expect(Set(table.slots) == Set(model.values))
            }
        }
        for (digest, slot) in model { #expect(table.find(digest, keyOf: key) == slot) }
        let absent = KeyDigest(w0: 1, w1: 2, w2: 3, w3: 4)
        #expect(table.find(absent, keyOf: key) == nil && SlotTable().find(absent, keyOf: key) == nil)
    }

    /// Used as a multimap (the partition's own-prefix index): keys drawn from a pool of eight, so
    /// most repeat, against a model of key → slots. Removing by slot must take that slot's bucket
    /// and no other under the same key, and shift the run back so the rest stay reachable.
    @Test(arguments: [UInt64(11), 12])
    func asAMultimapKeepsEverySlotOfAKeyThroughRemovals(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let pool = (0..<8).map { KeyDigest(w0: $0, w1: .random(in: 0...UInt64.max, using: &random), w2: 1, w3: 2) }
        var table = SlotTable()
        var model: [KeyDigest: Set<Int>] = [:]
        var keys: [KeyDigest] = []
        func key(_ slot: Int) -> KeyDigest { keys[slot] }
        for step in 0..<6_000 {
            let members = model.flatMap { entry in entry.value.map { (entry.key, $0) } }
            if members.isEmpty || Int.random(in: 0..<10, using: &random) < 6 {
                let digest = pool.randomElement(using: &random)!
                keys.append(digest)
                table.insert(digest, slot: keys.count - 1, keyOf: key)
                model[digest, default: []].insert(keys.count - 1)
            } else {
                let (digest, slot) = members.randomElement(using: &random)!
                let removed = table.remove(digest, slot: slot, keyOf: key)
                model[digest]?.remove(slot)
                let removedAgain = table.remove(digest, slot: slot, keyOf: key)
                #expect(removed && !removedAgain, "step \(step)")
            }
            #expect(table.count == model.values.reduce(0) { $0 + $1.count })
            if step % 101 == 0 {
                for digest in pool {
                    #expect(
                        Set(table.slots(matching: digest, keyOf: key)) == model[digest, default: []], "step \(step)")
                }
            }
        }
        let absent = KeyDigest(w0: 9, w1: 9, w2: 9, w3: 9)
        #expect(
            table.slots(matching: absent, keyOf: key).isEmpty && SlotTable().slots(matching: absent, keyOf: key).isEmpty
        )
        let removedAbsent = table.remove(pool[0], slot: keys.count + 5, keyOf: key)
        #expect(!removedAbsent)
    }

    /// The bookkeeping an entry carries stays what `make bench-memory` measured: a slot of at most
    /// 176 bytes (it was 224 with the primary in every slot and 64-bit links, then 184; naming a
    /// slab record took 8 bytes more, and the lifetime's flags after its `Double`s and the own
    /// prefix without an optional's byte took 16 off, decision 70).
    @Test func aSlotStaysSmall() {
        #expect(MemoryLayout<TenantPartition.Slot>.stride <= 152)
        #expect(MemoryLayout<CacheEntry>.size <= 88)
        #expect(MemoryLayout<SealedBytes>.size <= 16)
    }
}
