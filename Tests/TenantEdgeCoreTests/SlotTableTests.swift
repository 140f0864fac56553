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

    /// The bookkeeping an entry carries stays what `make bench-memory` measured: a slot of at most
    /// 184 bytes (it was 224 with the primary in every slot and 64-bit links).
    @Test func aSlotStaysSmall() {
        #expect(MemoryLayout<TenantPartition.Slot>.stride <= 184)
    }
}
