import Testing

@testable import TenantEdgeCore

/// The partition's slot index against a `Dictionary` model: seeded inserts and removals (with runs
/// long enough to wrap the table and shift entries back on removal), keys random or consecutive.
@Suite("Slot table")
struct SlotTableTests {
    @Test(arguments: [UInt64(1), 2, 3])
    func findsWhatADictionaryWouldThroughInsertsRemovalsAndGrowth(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var table = SlotTable()
        var model: [UInt64: Int] = [:]
        var keys: [UInt64] = []  // slot → key, as a partition's slots hold them
        func key(_ slot: Int) -> UInt64 { keys[slot] }
        func find(_ wanted: UInt64) -> Int? { table.find(wanted) { keys[$0] == wanted } }
        for step in 0..<40_000 {
            if model.isEmpty || Int.random(in: 0..<10, using: &random) < 6 {
                // seed 3: keys 0, 1, 2, … that differ in their low bits only
                let word = seed == 3 ? UInt64(keys.count) : .random(in: 0...UInt64.max, using: &random)
                keys.append(word)
                table.insert(word, slot: keys.count - 1, keyOf: key)
                model[word] = keys.count - 1
            } else {
                let victim = model.randomElement(using: &random)!
                #expect(find(victim.key) == victim.value, "step \(step)")
                let removed = table.remove(victim.key, slot: victim.value, keyOf: key)
                model[victim.key] = nil
                let removedAgain = table.remove(victim.key, slot: victim.value, keyOf: key)
                #expect(removed && !removedAgain, "step \(step)")
                #expect(find(victim.key) == nil, "step \(step)")
            }
            #expect(table.count == model.count)
            if step % 997 == 0 {
                for (word, slot) in model { #expect(find(word) == slot, "step \(step)") }
                #expect(Set(table.slots) == Set(model.values))
            }
        }
        for (word, slot) in model { #expect(find(word) == slot) }
        let absent = UInt64.max - 1
        #expect(find(absent) == nil && SlotTable().find(absent) { _ in true } == nil)
    }

    /// The bookkeeping an entry carries stays what `make bench-memory` measured: a slot of at most
    /// 80 bytes (224 with the primary in every slot and 64-bit links, then 184, 176 and 152; 80 with
    /// the storage digest as one word, the lifetime's windows in 32 bits and what few entries need
    /// in side tables, decision 79).
    @Test func aSlotStaysSmall() {
        #expect(MemoryLayout<TenantPartition.Slot>.stride <= 80)
        #expect(MemoryLayout<SealedBytes>.size <= 16)
    }
}
