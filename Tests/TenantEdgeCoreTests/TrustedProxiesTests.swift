import Testing

@testable import TenantEdgeCore

@Suite("Client address behind trusted proxies")
struct TrustedProxiesTests {
    static let proxies = try! TrustedProxies(["10.0.0.0/8", "192.168.1.7", "2001:db8:ff::/48"])

    @Test func networksMatchOnTheirPrefixOnly() throws {
        let network = try #require(IPNetwork("10.0.0.0/8"))
        #expect(network.contains(IPAddress("10.255.1.2")!))
        #expect(!network.contains(IPAddress("11.0.0.1")!))
        let odd = try #require(IPNetwork("172.16.0.0/12"))
        #expect(odd.contains(IPAddress("172.31.255.255")!) && !odd.contains(IPAddress("172.32.0.0")!))
        let v6 = try #require(IPNetwork("2001:db8:ff::/48"))
        #expect(v6.contains(IPAddress("2001:db8:ff:1::9")!) && !v6.contains(IPAddress("2001:db8:fe::1")!))
        #expect(!v6.contains(IPAddress("10.0.0.1")!), "families never match each other")
        #expect(
            IPNetwork("10.0.0.0/33") == nil && IPNetwork("10.0.0/8") == nil && IPNetwork("example.com") == nil
                && IPNetwork("::/129") == nil)
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(
            IPNetwork("::/0")!.contains(IPAddress("2001:db8::1")!)
                && !IPNetwork("::/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(IPAddress("::ffff:10.1.2.3") == IPAddress("10.1.2.3"), "IPv4-mapped is IPv4")
        #expect(
            IPNetwork("2001:db8::1/128")!.contains(IPAddress("2001:db8::1")!)
                && !IPNetwork("2001:db8::1/128")!.contains(IPAddress("2001:db8::2")!))
        #expect(
            IPNetwork("2001:db8:0:0:8000::/65")!.contains(IPAddress("2001:db8::8000:0:0:1")!)
                && !IPNetwork("2001:db8::/65")!.contains(IPAddress("2001:db8::8000:0:0:1")!))
        #expect(IPAddress("1.2.3") == nil && IPAddress("") == nil && IPAddress("1.2.3.4 ") == nil)
    }

    @Test func anUntrustedPeersForwardedForChangesNothing() {
        #expect(Self.proxies.clientAddress(peer: "203.0.113.9", forwardedFor: ["81.2.69.160"]) == "203.0.113.9")
        #expect(Self.proxies.clientAddress(peer: "203.0.113.9", forwardedFor: []) == "203.0.113.9")
    }

    @Test func aTrustedPeerVouchesForTheHopItAdded() {
        #expect(Self.proxies.clientAddress(peer: "10.1.2.3", forwardedFor: ["81.2.69.160"]) == "81.2.69.160")
        #expect(
            Self.proxies.clientAddress(peer: "::ffff:10.1.2.3", forwardedFor: ["81.2.69.160"]) == "81.2.69.160",
            "an IPv4 proxy seen through a dual-stack socket is still trusted")
        #expect(
            Self.proxies.clientAddress(peer: "2001:db8:ff::1", forwardedFor: ["[2001:db8:1::5]:4711"])
                == "2001:db8:1::5")
    }

    @Test func hopsLeftOfTheFirstUntrustedOneAreTheClientsOwnWordAndIgnored() {
        // The client wrote "1.1.1.1" itself; the trusted proxy appended the address it saw.
        #expect(
            Self.proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["1.1.1.1, 216.160.83.56"]) == "216.160.83.56")
        // Two trusted proxies in a row, over two header lines.
        #expect(
            Self.proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["1.1.1.1, 216.160.83.56", "192.168.1.7"])
                == "216.160.83.56")
    }

    @Test func garbageStopsTheWalkAndAllTrustedGivesTheLeftMost() {
        #expect(Self.proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["not-an-ip"]) == "10.0.0.1")
        #expect(
            Self.proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["81.2.69.160, unknown, 10.0.0.2"]) == "10.0.0.2"
        )
        #expect(Self.proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["10.0.0.3, 10.0.0.2"]) == "10.0.0.3")
        #expect(Self.proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["81.2.69.160:5555"]) == "81.2.69.160")
    }

    @Test func hostileHopsStopTheWalkWithoutReadingPastThem() {
        let peer = "10.0.0.1"
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: ["81.2.69.160,,"]) == "81.2.69.160")
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: [",,,"]) == peer, "only empty hops")
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: [""]) == peer)
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: ["81.2.69.160, ,10.0.0.2"]) == "10.0.0.2")
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: [String(repeating: "1", count: 100_000)]) == peer)
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: ["[2001:db8::1", "[]", "[::1"]) == peer)
        #expect(
            Self.proxies.clientAddress(peer: peer, forwardedFor: ["81.2.69.160\u{0}, 10.0.0.2"]) == "10.0.0.2",
            "a NUL does not cut a hop short into an address")
        #expect(Self.proxies.clientAddress(peer: peer, forwardedFor: ["\t 81.2.69.160 \t"]) == "81.2.69.160")
        #expect(
            Self.proxies.clientAddress(peer: peer, forwardedFor: ["1.1.1.1", "10.0.0.9, 192.168.1.7", ""]) == "1.1.1.1",
            "the walk goes on through earlier header lines while the hops are trusted")
        #expect(IPAddress(utf8: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
    }

    @Test func badEntriesAreNamedAndNoProxiesTrustNobody() throws {
        #expect(throws: EdgeError.self) { try TrustedProxies(["10.0.0.0/8", "ten"]) }
        do {
            _ = try TrustedProxies(["10.0.0.0/8", "ten"])
        } catch {
            #expect(error.message.contains("geoip.trusted_proxies[1]"))
        }
        let none = try TrustedProxies([])
        #expect(none.clientAddress(peer: "10.0.0.1", forwardedFor: ["81.2.69.160"]) == "10.0.0.1")
    }
}

@Suite("Recently used cache")
struct RecentlyUsedCacheTests {
    @Test func holdsAtMostItsCapacityAndKeepsWhatIsUsed() {
        var cache = RecentlyUsedCache<Int, String>(capacity: 8)
        for key in 0..<4 { cache.insert("v\(key)", for: key) }
        for key in 4..<100 {
            #expect(cache.value(for: 0) == "v0", "used between every few inserts: kept")
            cache.insert("v\(key)", for: key)
            #expect(cache.count <= 8)
        }
        #expect(cache.value(for: 5) == nil, "not used since long ago: gone")
        #expect(cache.value(for: 99) == "v99")
        cache.removeAll()
        #expect(cache.count == 0 && cache.value(for: 99) == nil)
    }

    @Test func replacingAKeyDoesNotGrowTheCache() {
        var cache = RecentlyUsedCache<String, Int>(capacity: 4)
        for round in 0..<10 { cache.insert(round, for: "a") }
        #expect(cache.count == 1 && cache.value(for: "a") == 9)
    }
}
