import Testing

@testable import TenantEdgeCore

@Suite("Digest set")
struct DigestSetTests {
    static func key(_ n: UInt64) -> KeyDigest { KeyDigest(w0: n, w1: ~n, w2: n &* 31, w3: 7) }

    @Test func holdsOneThenManyThenOneAgain() {
        var set = DigestSet()
        #expect(set.isEmpty && set.count == 0 && set.members.isEmpty)
        set.insert(Self.key(1))
        set.insert(Self.key(1))
        #expect(set.count == 1 && set.contains(Self.key(1)) && !set.contains(Self.key(2)))
        set.insert(Self.key(2))
        set.insert(Self.key(3))
        #expect(set.count == 3 && Set(set.members) == [Self.key(1), Self.key(2), Self.key(3)])
        set.remove(Self.key(9))
        set.remove(Self.key(1))
        set.remove(Self.key(2))
        #expect(set.count == 1 && set.members == [Self.key(3)])
        set.remove(Self.key(4))
        #expect(set.count == 1)
        set.remove(Self.key(3))
        #expect(set.isEmpty && set.members.isEmpty)
        set.remove(Self.key(3))
        #expect(set.isEmpty)
    }

    @Test func aCopyIsIndependent() {
        var first = DigestSet()
        for n: UInt64 in 0..<10 { first.insert(Self.key(n)) }
        var second = first
        second.remove(Self.key(0))
        first.insert(Self.key(99))
        #expect(first.count == 11 && second.count == 9 && !second.contains(Self.key(99)) && first.contains(Self.key(0)))
    }
}
