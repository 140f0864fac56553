import Foundation
import TenantEdgeCore

/// `edge-bench partition-memory SHAPE [PARTITIONS] [PER_PARTITION]`: what an L1 entry of one shape
/// costs in memory beside what it is charged to its tenant's quota. The quota is the isolation
/// between tenants on a node, so an entry must never hold more than it is charged: an upstream that
/// sends every tag it may, `Expires` without `Date` or a `Vary` on every answer chooses its entries'
/// shape, and a node sized by its tenants' quotas must not find itself out of memory.
///
/// Fills PARTITIONS partitions (100) with PER_PARTITION entries each (1,000), as a node holds its
/// tenants, and prints one line: the shape, the entries, the RSS growth per entry less the sealed
/// bytes, and the charge per entry less the same (`TenantPartition.usedBytes`). Exits 1 when the
/// memory is more than the charge. RSS is read from `/proc/self/status`, so each shape runs in a
/// process of its own (`bench/partition-memory.sh` runs them all): memory freed by one shape would
/// be reused by the next and hide its growth.
///
/// Shapes (every digest a new one, the worst case for the indexes):
/// - `plain`: `/m/N`, its directory's three prefixes shared, no tags;
/// - `query`: `/m/N?q`, so the path is a further own prefix;
/// - `tags`: plain, with `StoragePolicy.maxTags` tags of its own;
/// - `wide`: plain, with a lifetime of fractional seconds (`Expires` without `Date`);
/// - `variant`: one variant of its own primary, `Vary: accept-encoding`;
/// - `directory`: `/dN/x`, in a directory of its own;
/// - `worst`: all of those at once, varying on 16 long names;
/// - `reshaped`: partitions with a quota, filled with `worst` entries until they evict, then with
///   PER_PARTITION plain ones, which evict those: what the tables of the first shape still hold
///   (decision 81). RSS is read after `malloc_trim(0)`, which gives the pages malloc holds free
///   back to the system: the first shape's memory, once freed, would otherwise stay resident.
enum PartitionMemoryBench {
    static let shapes = ["plain", "query", "tags", "wide", "variant", "directory", "worst", "reshaped"]

    static func run(_ arguments: [String]) throws {
        guard arguments.count >= 3, shapes.contains(arguments[2]) else { EdgeBench.usage() }
        let shape = arguments[2]
        let partitionCount = arguments.count > 3 ? max(1, Int(arguments[3]) ?? 100) : 100
        let perPartition = arguments.count > 4 ? max(1, Int(arguments[4]) ?? 1_000) : 1_000
        let sealedSize = 1_024
        var generator = SeededGenerator(seed: 0x5107_3e3a)
        func digest() -> KeyDigest {
            KeyDigest(w0: generator.next(), w1: generator.next(), w2: generator.next(), w3: generator.next())
        }
        let reshaped = shape == "reshaped"
        // `reshaped`: room for the plain entries (352 bytes charged beyond the sealed ones) and a few more
        let quota = reshaped ? perPartition * (sealedSize + 352) + 64 * 1_024 : Int(UInt32.max) * 64
        var partitions = (0..<partitionCount).map { _ in TenantPartition(quotaBytes: quota) }
        let directory = (0..<3).map { _ in digest() }
        let sealed = [UInt8](repeating: 0xa5, count: sealedSize)
        // `worst` varies on 16 names of 40 bytes, each an allocation of its own (a name of up to 15 bytes
        // is kept inline); made anew for every entry, as a response's `Vary` is read.
        func longName(_ n: Int) -> String { "x-tenant-chosen-header-with-a-long-name-\(n % 10)" }
        let varyNames = { shape == "worst" ? (0..<16).map(longName) : ["accept-encoding"] }

        func insert(into index: Int, as shape: String = shape) {
            let wide = shape == "wide" || shape == "worst"
            let lifetime = StoragePolicy.Lifetime(
                freshness: wide ? 3_600.25 : 3_600, initialAge: 0, staleWhileRevalidate: wide ? 30.5 : 30,
                staleIfError: 0, hasValidator: true, keep: wide ? 3_630.75 : 3_630)
            let tagged = shape == "tags" || shape == "worst"
            let tags = tagged ? (0..<StoragePolicy.maxTags).map { _ in digest() } : []
            let entry = CacheEntry(sealed: sealed, responseTime: 1_000.5, lifetime: lifetime, tagDigests: tags)
            let primary = digest()
            let varies = shape == "variant" || shape == "worst"
            let storageKey = varies ? digest() : primary
            let ownDirectory = shape == "directory" || shape == "worst"
            var prefixes = (ownDirectory ? [directory[0], digest(), digest()] : directory) + [digest()]
            if shape == "query" || shape == "worst" { prefixes.append(digest()) }
            let stored = partitions[index].insert(
                entry, primary: primary, storageKey: storageKey, varyNames: varies ? varyNames() : [],
                prefixDigests: prefixes, directoryPrefixes: directory.count)
            precondition(stored, "partition-memory: an entry was refused")
        }

        // One entry a partition first: every partition's tables and first slab exist before counting.
        let plainShape = reshaped ? "plain" : shape
        for index in partitions.indices { insert(into: index, as: plainShape) }
        let used0 = partitions.reduce(0) { $0 + $1.usedBytes }
        let rss0 = residentBytes(trimmed: reshaped)
        func slabSlack() -> Int { partitions.reduce(0) { $0 + $1.slabSizes.allocated - $1.slabSizes.live } }
        let slack0 = slabSlack()
        for index in partitions.indices where reshaped {
            while partitions[index].evictions == 0 { insert(into: index, as: "worst") }
        }
        for index in partitions.indices {
            for _ in 1..<perPartition { insert(into: index, as: plainShape) }
        }
        let rss1 = residentBytes(trimmed: reshaped)
        let used1 = partitions.reduce(0) { $0 + $1.usedBytes }
        let added = partitionCount * (perPartition - 1)
        guard added > 0 else { return print("\(shape) 0 0 0 ok 0") }
        // `reshaped`: room in slabs beyond their live records is not charged (slabs are kept at least
        // half live, docs/operations.md), and evictions between records leave some: told apart, so
        // the rest can be held to the charge. (A fresh fill leaves only the last slab's unwritten room.)
        let slack = reshaped ? slabSlack() - slack0 : 0
        let memory = Double(rss1 - rss0 - slack) / Double(added) - Double(sealedSize)
        let charged = Double(used1 - used0) / Double(added) - Double(sealedSize)
        let verdict = memory <= charged ? "ok" : "over"
        print(
            shape, added, String(format: "%.0f", memory), String(format: "%.0f", charged), verdict,
            String(format: "%.0f", Double(slack) / Double(added)))
        withExtendedLifetime(partitions) {}
        if memory > charged { exit(1) }
    }

    /// VmRSS; `trimmed`: after glibc's `malloc_trim(0)` (found at run time: `malloc.h` is not in
    /// Swift's Glibc module), so pages malloc holds free are not counted.
    static func residentBytes(trimmed: Bool = false) -> Int {
        if trimmed, let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            typealias MallocTrim = @convention(c) (Int) -> Int32
            _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        }
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1_024
    }
}
