import Dispatch
import Testing

@testable import TenantEdgeCore

@Suite("Tenant partitions: LRU, quotas and purge indexes")
struct TenantPartitionTests {
    static let lifetime = StoragePolicy.Lifetime(
        freshness: 60, initialAge: 0, staleWhileRevalidate: 0, staleIfError: 0,
        hasValidator: false, keep: 60)

    static func entry(bytes: Int, tags: [KeyDigest] = []) -> CacheEntry {
        CacheEntry(sealed: [UInt8](repeating: 1, count: bytes), responseTime: 0, lifetime: lifetime, tagDigests: tags)
    }

    static func key(_ n: Int) -> KeyDigest { KeyDigest(w0: UInt64(n), w1: 0, w2: 0, w3: 7) }

    @Test func evictsLeastRecentlyUsedWithinQuota() {
        let size = Self.entry(bytes: 100).chargedBytes
        var partition = TenantPartition(quotaBytes: size * 3)
        for n in 1...3 {
            partition.insert(
                Self.entry(bytes: 100), primary: Self.key(n), storageKey: Self.key(n), varyNames: [], prefixDigests: [])
        }
        _ = partition.entry(storageKey: Self.key(1))  // 1 becomes most recent; 2 is now oldest
        partition.insert(
            Self.entry(bytes: 100), primary: Self.key(4), storageKey: Self.key(4), varyNames: [], prefixDigests: [])
        #expect(partition.entry(storageKey: Self.key(2)) == nil)
        #expect(partition.entry(storageKey: Self.key(1)) != nil)
        #expect(partition.entry(storageKey: Self.key(4)) != nil)
        #expect(partition.evictions == 1)
        #expect(partition.usedBytes <= partition.quotaBytes)
    }

    @Test func refusesAnEntryLargerThanTheWholeQuota() {
        var partition = TenantPartition(quotaBytes: 1000)
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(1), storageKey: Self.key(1), varyNames: [], prefixDigests: [])
        let stored = partition.insert(
            Self.entry(bytes: 5000), primary: Self.key(2), storageKey: Self.key(2), varyNames: [], prefixDigests: [])
        #expect(!stored)
        #expect(partition.count == 1)
    }

    @Test func purgesByTagPrefixAndKeyOnlyWhatTheyName() {
        var partition = TenantPartition(quotaBytes: 1 << 20)
        let tagA = Self.key(100)
        let tagB = Self.key(101)
        let prefix = Self.key(200)
        partition.insert(
            Self.entry(bytes: 10, tags: [tagA]), primary: Self.key(1), storageKey: Self.key(1), varyNames: [],
            prefixDigests: [prefix, Self.key(301)])
        partition.insert(
            Self.entry(bytes: 10, tags: [tagA, tagB]), primary: Self.key(2), storageKey: Self.key(2), varyNames: [],
            prefixDigests: [])
        partition.insert(
            Self.entry(bytes: 10, tags: [tagB]), primary: Self.key(3), storageKey: Self.key(3), varyNames: [],
            prefixDigests: [prefix, Self.key(303)])
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(4), storageKey: Self.key(4), varyNames: [], prefixDigests: [])
        #expect(partition.removeAll(tag: tagA) == 2)
        #expect(partition.removeAll(tag: tagA) == 0)
        #expect(partition.removeAll(indexedUnder: prefix) == 1)  // key 3; key 1 already gone
        #expect(partition.count == 1)
        #expect(partition.removeAll(primary: Self.key(4)) == 1)
        #expect(partition.count == 0)
        #expect(partition.usedBytes == 0)
    }

    /// A 304 may grow an entry (more fields, 64 tags): the quota holds after it, older entries going
    /// first, and an entry that no longer fits alone goes itself (decision 80).
    @Test func aRefreshThatGrowsAnEntryKeepsTheQuota() {
        let small = Self.entry(bytes: 100).chargedBytes
        var partition = TenantPartition(quotaBytes: 3 * small)
        for n in 0..<3 {
            partition.insert(
                Self.entry(bytes: 100), primary: Self.key(n), storageKey: Self.key(n), varyNames: [], prefixDigests: [])
        }
        #expect(partition.count == 3 && partition.usedBytes == 3 * small)
        let grown = partition.refresh(storageKey: Self.key(1), with: Self.entry(bytes: 100 + small))
        #expect(grown && partition.count == 2 && partition.evictions == 1 && partition.usedBytes <= 3 * small)
        #expect(partition.peek(storageKey: Self.key(0)) == nil, "the least recently used entry went")
        let tags = (0..<64).map { Self.key(500 + $0) }
        let tagged = partition.refresh(storageKey: Self.key(2), with: Self.entry(bytes: 100, tags: tags))
        #expect(!tagged && partition.peek(storageKey: Self.key(2)) == nil, "too large alone: removed")
        #expect(partition.usedBytes <= 3 * small && partition.usedBytes == partition.recountedUsedBytes)
        #expect(partition.removeAll(tag: tags[0]) == 0, "its tags' index went with it")
    }

    /// The worst an upstream (or a value read back from Redis) can hand the partition's charges: the
    /// same tag and prefix named twice, and a `Vary` of many long names. Each index key is charged
    /// once and released once, long names cost more than short ones, and nothing is left charged.
    @Test func duplicatedKeysAndLongVaryNamesAreChargedOnceAndReleased() {
        var partition = TenantPartition(quotaBytes: 1 << 20)
        let (tag, prefix) = (Self.key(900), Self.key(901))
        let stored = partition.insert(
            Self.entry(bytes: 10, tags: [tag, tag]), primary: Self.key(1), storageKey: Self.key(1), varyNames: [],
            prefixDigests: [prefix, prefix, Self.key(101)])
        #expect(stored && partition.usedBytes == partition.recountedUsedBytes)
        #expect(partition.removeAll(tag: tag) == 1 && partition.usedBytes == 0 && partition.sideRecords == 0)
        let long = (0..<64).map { "x-a-header-name-longer-than-fifteen-bytes-\($0)" }
        let short = (0..<64).map { "h\($0)" }
        var charges: [Int] = []
        for names in [short, long] {
            let varied = partition.insert(
                Self.entry(bytes: 10), primary: Self.key(2), storageKey: Self.key(3), varyNames: names,
                prefixDigests: [prefix, Self.key(102)])
            #expect(varied && partition.usedBytes == partition.recountedUsedBytes)
            charges.append(partition.usedBytes)
        }
        #expect(charges[1] >= charges[0] + 64 * 64 + long.reduce(0) { $0 + $1.utf8.count })
        #expect(partition.removeAll(primary: Self.key(2)) == 1 && partition.usedBytes == 0)
        #expect(partition.indexSizes.ownPrefixes == 0 && partition.sideRecords == 0)
    }

    /// A 304 that names other tags re-indexes the entry: a purge by a tag it lost misses it, one by
    /// a tag it gained finds it, and the one it kept still does.
    @Test func aRefreshWithOtherTagsReindexesThem() {
        var partition = TenantPartition(quotaBytes: 1 << 20)
        let (kept, lost, gained) = (Self.key(100), Self.key(101), Self.key(102))
        partition.insert(
            Self.entry(bytes: 10, tags: [kept, lost]), primary: Self.key(1), storageKey: Self.key(1), varyNames: [],
            prefixDigests: [])
        let refreshed = partition.refresh(storageKey: Self.key(1), with: Self.entry(bytes: 12, tags: [kept, gained]))
        #expect(refreshed)
        // Each purge on a copy of its own (the partition is a value).
        var (byLost, byGained, byKept) = (partition, partition, partition)
        #expect(byLost.removeAll(tag: lost) == 0 && byLost.count == 1)
        #expect(byGained.removeAll(tag: gained) == 1 && byGained.usedBytes == 0)
        #expect(byGained.removeAll(tag: kept) == 0, "the kept tag's index went with the entry")
        #expect(byKept.removeAll(tag: kept) == 1 && byKept.removeAll(tag: gained) == 0)
        partition = byKept
        let goneRefreshed = partition.refresh(storageKey: Self.key(1), with: Self.entry(bytes: 12))
        #expect(!goneRefreshed, "a gone entry is not refreshed")
    }

    @Test func varyVariantsShareAPrimaryAndArePurgedTogether() {
        var partition = TenantPartition(quotaBytes: 1 << 20)
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(1), storageKey: Self.key(11), varyNames: ["accept"],
            prefixDigests: [])
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(1), storageKey: Self.key(12), varyNames: ["accept"],
            prefixDigests: [])
        guard case .needsVariant(let names) = partition.lookup(primary: Self.key(1)) else {
            Issue.record("expected variants")
            return
        }
        #expect(names == ["accept"])
        #expect(partition.removeAll(primary: Self.key(1)) == 2)
        guard case .miss = partition.lookup(primary: Self.key(1)) else {
            Issue.record("expected a miss")
            return
        }
    }

    @Test func plainEntriesLeaveNoIndexBehindWhenPurgedEvictedOrReplaced() {
        // room for three entries of 10 bytes, each with one tag and two prefixes (the first makes the
        // tag's and the shared prefix's index keys)
        let (directory, tag) = (Self.key(900), Self.key(901))
        var sizing = TenantPartition(quotaBytes: 1 << 20)
        for n in 0..<2 {
            sizing.insert(
                Self.entry(bytes: 10, tags: [tag]), primary: Self.key(n), storageKey: Self.key(n), varyNames: [],
                prefixDigests: [directory, Self.key(100 + n)])
        }
        let each = Self.entry(bytes: 10, tags: [tag]).chargedBytes + 2 * 48 + 128 + 128 + 32 + 96
        #expect(sizing.usedBytes == 2 * each + 2 * 192, "two entries, and the tag's and the prefix's keys")
        var partition = TenantPartition(quotaBytes: 3 * each + 2 * 192)
        for n in 0..<5 {  // two evicted on the way
            partition.insert(
                Self.entry(bytes: 10, tags: [tag]), primary: Self.key(n), storageKey: Self.key(n), varyNames: [],
                prefixDigests: [directory, Self.key(100 + n)])
        }
        #expect(partition.count == 3 && partition.evictions == 2)
        #expect(partition.removeAll(prefix: Self.key(100), asTarget: Self.key(0)) == 0, "an evicted entry is gone")
        #expect(partition.removeAll(indexedUnder: Self.key(104)) == 0, "a plain entry's whole target is not indexed")
        #expect(partition.removeAll(prefix: Self.key(104), asTarget: Self.key(4)) == 1)
        #expect(partition.removeAll(tag: tag) == 2 && partition.count == 0 && partition.usedBytes == 0)
        #expect(partition.removeAll(indexedUnder: directory) == 0, "the directory's index emptied with its entries")
        // a plain entry replaced by itself keeps one index membership, not two
        for _ in 0..<3 {
            partition.insert(
                Self.entry(bytes: 10), primary: Self.key(7), storageKey: Self.key(7), varyNames: [],
                prefixDigests: [directory, Self.key(107)])
        }
        #expect(partition.count == 1 && partition.removeAll(indexedUnder: directory) == 1 && partition.count == 0)
        // purge by key takes a plain entry and, after the upstream began to vary, its variants
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(8), storageKey: Self.key(8), varyNames: [], prefixDigests: [])
        #expect(partition.removeAll(primary: Self.key(8)) == 1)
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(8), storageKey: Self.key(8), varyNames: [], prefixDigests: [])
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(8), storageKey: Self.key(81), varyNames: ["accept"],
            prefixDigests: [directory])
        #expect(partition.count == 1, "the plain entry went when the upstream began to vary")
        #expect(partition.removeAll(indexedUnder: directory) == 1 && partition.count == 0 && partition.usedBytes == 0)
    }

    @Test func aVaryingResponseIsNeverStoredUnderItsPrimary() {
        // `lookup` answers from the primary's own slot without asking for the variant: a varying
        // response there would be served to every client, whatever its headers.
        var partition = TenantPartition(quotaBytes: 1 << 20)
        let stored = partition.insert(
            Self.entry(bytes: 10), primary: Self.key(1), storageKey: Self.key(1), varyNames: ["cookie"],
            prefixDigests: [])
        #expect(!stored)
        guard case .miss = partition.lookup(primary: Self.key(1)) else {
            Issue.record("a varying response was stored under its primary")
            return
        }
        // The upstream drops its Vary: the plain entry replaces the variants and is found directly.
        partition.insert(
            Self.entry(bytes: 10), primary: Self.key(2), storageKey: Self.key(21), varyNames: ["accept"],
            prefixDigests: [])
        partition.insert(
            Self.entry(bytes: 20), primary: Self.key(2), storageKey: Self.key(2), varyNames: [], prefixDigests: [])
        guard case .found(let entry) = partition.lookup(primary: Self.key(2)) else {
            Issue.record("the plain entry was not found")
            return
        }
        let oldVariant = partition.entry(storageKey: Self.key(21))
        #expect(entry.sealed.count == 20 && oldVariant == nil && partition.count == 1)
        // and back: the variants replace the plain entry, which is no longer served directly
        partition.insert(
            Self.entry(bytes: 30), primary: Self.key(2), storageKey: Self.key(22), varyNames: ["accept"],
            prefixDigests: [])
        guard case .needsVariant = partition.lookup(primary: Self.key(2)) else {
            Issue.record("the plain entry outlived the upstream's new Vary")
            return
        }
    }
}

@Suite("Tenant cache over a cipher")
struct TenantCacheTests {
    static func cache(_ id: String, seed: UInt64, quota: Int = 1 << 20) -> TenantCache {
        TenantCache(
            tenant: TenantConfig(id: id, hosts: ["\(id).test"], upstream: "http://127.0.0.1:1"),
            cipher: FakeCipher(seed: seed), quotaBytes: quota)
    }

    static let lifetime = TenantPartitionTests.lifetime

    @Test func prefixesAreSegmentBoundaries() {
        #expect(
            TenantCache.prefixes(of: "/v1/a/b?x=1") == [
                "/", "/v1", "/v1/", "/v1/a", "/v1/a/", "/v1/a/b", "/v1/a/b?x=1",
            ])
        #expect(TenantCache.prefixes(of: "/") == ["/"])
        #expect(TenantCache.prefixes(of: "/v1/") == ["/", "/v1", "/v1/"])
        #expect(TenantCache.prefixes(of: "/?q") == ["/", "/?q"])
    }

    @Test func rememberedPrefixDigestsAreTheDigestsOfThePrefixes() {
        let cache = Self.cache("acme", seed: 5)
        let other = Self.cache("globex", seed: 6)
        let long = "/" + String(repeating: "d", count: TenantCache.memoizedDirectoryBytes + 10)
        let deep = String(repeating: "/a", count: TenantCache.maxIndexedSegments + 3) + "/x"
        // More directories than the memo holds, one too long and one too deep to remember, a path
        // that is its own directory, a bare `/`, each asked twice.
        let targets =
            (0..<TenantCache.memoizedDigestCount).map { "/v1/d\($0)/item?x=\($0)" } + [
                long + "/x", deep, "/v1/", "/v1/?q", "/", "/?q", "/a//b",
            ]
        let (onLane, otherOnLane) = DispatchQueue(label: "prefix-memo").sync { () -> ([[KeyDigest]], [KeyDigest]) in
            WorkerLane.claim()
            let digests = (targets + targets).map(cache.prefixDigests(of:))
            return (digests, other.prefixDigests(of: targets[0]))
        }
        let expected = (targets + targets).map { TenantCache.prefixes(of: $0).map(cache.prefixDigest) }
        #expect(onLane == expected)
        #expect(cache.prefixDigests(of: targets[0]) == expected[0], "without a lane: computed")
        #expect(otherOnLane == TenantCache.prefixes(of: targets[0]).map(other.prefixDigest), "memos are per tenant")
        #expect(otherOnLane != expected[0])
    }

    @Test func memosKeepCanonicallyEquivalentButDifferentBytesApart() {
        let cache = Self.cache("acme", seed: 7)
        let composed = "/caf\u{E9}/x"
        let decomposed = "/cafe\u{301}/x"
        let (prefixes, primaries) = DispatchQueue(label: "memo-bytes").sync {
            () -> ([[KeyDigest]], [KeyDigest]) in
            WorkerLane.claim()
            return (
                [cache.prefixDigests(of: composed), cache.prefixDigests(of: decomposed)],
                [cache.primaryDigest(target: composed), cache.primaryDigest(target: decomposed)]
            )
        }
        #expect(prefixes[0] == TenantCache.prefixes(of: composed).map(cache.prefixDigest))
        #expect(prefixes[1] == TenantCache.prefixes(of: decomposed).map(cache.prefixDigest))
        #expect(prefixes[0] != prefixes[1])
        #expect(primaries[0] != primaries[1])
        #expect(primaries[1] == cache.cipher.digest(domain: UInt8(ascii: "k"), decomposed))
    }

    @Test func storesSealedAndFindsByTargetAndVariant() throws {
        let cache = Self.cache("acme", seed: 3)
        let record = ResponseRecord(status: 200, headers: [HeaderField("Vary", "Accept")], body: Array("json".utf8))
        _ = try cache.store(
            target: "/a", requestHeaders: [HeaderField("Accept", "application/json")], record: record,
            varyNames: ["accept"], tags: ["t"], lifetime: Self.lifetime, responseTime: 0)
        #expect(cache.lookup(target: "/a", requestHeaders: [HeaderField("Accept", "text/html")]) == nil)
        let found = try #require(
            cache.lookup(target: "/a", requestHeaders: [HeaderField("accept", "application/json")]))
        #expect(found.entry.sealed != record.encoded())
        let opened = try cache.cipher.open(found.entry.sealed, aad: cache.aad(found.storageKey, for: found.entry))
        #expect(ResponseRecord(decoding: opened) == record)
        #expect(cache.purge(keys: [], tags: ["t"], prefixes: [], all: false) == 1)
    }

    @Test func floodingTenantEvictsOnlyItself() throws {
        let quiet = Self.cache("quiet", seed: 1, quota: 64 * 1024)
        let noisy = Self.cache("noisy", seed: 2, quota: 64 * 1024)
        let body = [UInt8](repeating: 7, count: 1024)
        for n in 0..<20 {
            try quiet.store(
                target: "/q/\(n)", requestHeaders: [], record: ResponseRecord(status: 200, headers: [], body: body),
                varyNames: [], tags: [], lifetime: Self.lifetime, responseTime: 0)
        }
        for n in 0..<5000 {
            try noisy.store(
                target: "/n/\(n)", requestHeaders: [], record: ResponseRecord(status: 200, headers: [], body: body),
                varyNames: [], tags: [], lifetime: Self.lifetime, responseTime: 0)
        }
        #expect(quiet.occupancy().entries == 20)
        #expect(quiet.occupancy().evictions == 0)
        #expect(noisy.occupancy().evictions > 0)
        #expect(noisy.occupancy().bytes <= 64 * 1024)
    }
}

@Suite("Request collapsing state machine")
struct RequestCollapserTests {
    @Test func firstJoinLeadsOthersWaitAndFinishReturnsThem() {
        var collapser = RequestCollapser<String, Int>()
        let actions = [
            collapser.join("k", waiter: 1), collapser.join("k", waiter: 2), collapser.join("k", waiter: 3),
            collapser.join("other", waiter: 4),
        ]
        #expect(actions == [.lead, .wait, .wait, .lead])
        let busy = collapser.leadIfIdle("k")
        #expect(!busy)
        let waiters = collapser.finish("k")
        #expect(waiters == [2, 3])
        let idle = collapser.leadIfIdle("k")
        #expect(idle)
        let none = collapser.finish("k")
        #expect(none == [])
        #expect(collapser.inFlightCount == 1)
    }
}

@Suite("Admin tokens and purge bodies")
struct AdminTests {
    static let digestA = [UInt8](repeating: 0xAA, count: 32)
    static let tokens = AdminTokens([
        .init(sha256: digestA, scopes: [.purge], tenants: ["acme"]),
        .init(sha256: [UInt8](repeating: 0xBB, count: 32), scopes: [.admin], tenants: ["*"]),
    ])

    @Test func scopesAndTenantsAreEnforced() {
        #expect(Self.tokens.authorize(digest: nil, scope: .purge) == .unauthenticated)
        #expect(Self.tokens.authorize(digest: [UInt8](repeating: 1, count: 32), scope: .purge) == .unauthenticated)
        if case .allowed = Self.tokens.authorize(digest: Self.digestA, scope: .purge, tenant: "acme") {
        } else {
            Issue.record("acme purge")
        }
        if case .forbidden = Self.tokens.authorize(digest: Self.digestA, scope: .purge, tenant: "globex") {
        } else {
            Issue.record("globex")
        }
        if case .forbidden = Self.tokens.authorize(digest: Self.digestA, scope: .read) {
        } else {
            Issue.record("read scope")
        }
        if case .allowed = Self.tokens.authorize(digest: [UInt8](repeating: 0xBB, count: 32), scope: .read, tenant: "x")
        {
        } else {
            Issue.record("admin implies read")
        }
    }

    @Test func purgeBodiesAreValidatedStrictly() throws {
        let ok = try PurgeRequest(
            json: Array(#"{"tenant":"acme","keys":["/v1/a?x=1"],"tags":["t1"],"prefixes":["/v1/"],"all":false}"#.utf8))
        #expect(ok == PurgeRequest(tenant: "acme", keys: ["/v1/a?x=1"], tags: ["t1"], prefixes: ["/v1/"]))
        let bad: [(String, String)] = [
            ("{", "not valid JSON"), (#"{"keys":["/a"]}"#, "'tenant'"),
            (#"{"tenant":"a","tag":["x"]}"#, "unknown field 'tag'"),
            (#"{"tenant":"a","keys":"/a"}"#, "'keys'"), (#"{"tenant":"a"}"#, "nothing to purge"),
            (#"{"tenant":"a","all":"yes"}"#, "'all'"),
        ]
        for (body, expected) in bad {
            #expect(throws: EdgeError.self) { try PurgeRequest(json: Array(body.utf8)) }
            do { _ = try PurgeRequest(json: Array(body.utf8)) } catch {
                #expect(error.message.contains(expected), "\(body)")
            }
        }
    }
}

@Suite("Stored record format")
struct ResponseRecordTests {
    @Test func roundTripsAndLocatesTheWireHeaderBlock() throws {
        let record = ResponseRecord(
            status: 203, headers: [HeaderField("Content-Type", "text/plain"), HeaderField("X-Empty", "")],
            body: Array("hello".utf8))
        let bytes = record.encoded()
        #expect(ResponseRecord(decoding: bytes) == record)
        let layout = try #require(bytes.withUnsafeBytes { ResponseRecord.layout($0) })
        #expect(layout.status == 203)
        #expect(
            String(decoding: bytes[layout.headerBlock], as: UTF8.self) == "Content-Type: text/plain\r\nX-Empty: \r\n")
        #expect(Array(bytes[layout.bodyOffset...]) == Array("hello".utf8))
    }

    @Test func refusesTruncatedOrForeignBytes() {
        let bytes = ResponseRecord(status: 200, headers: [HeaderField("A", "b")], body: []).encoded()
        #expect(ResponseRecord(decoding: Array(bytes.prefix(9))) == nil)
        #expect(ResponseRecord(decoding: [1, 0, 200, 0, 0, 0, 0]) == nil)
    }

    @Test func storedHeadersDropWhatTheCacheRecomputes() {
        var headers = [
            HeaderField("Age", "3"), HeaderField("Content-Length", "5"), HeaderField("Connection", "x-private"),
            HeaderField("X-Private", "1"), HeaderField("Surrogate-Key", "a b"), HeaderField("ETag", "\"e\""),
            HeaderField("X-Edge-Region", "spoofed"), HeaderField("X-Edge-Preferred-Region", "spoofed"),
        ]
        #expect(StoredHeaders.prepare(&headers) == ["a", "b"])
        #expect(headers == [HeaderField("ETag", "\"e\"")])
    }
}
