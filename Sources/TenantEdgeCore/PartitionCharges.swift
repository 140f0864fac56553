/// What a partition charges its tenant's quota for the memory behind its entries, beside their sealed
/// bytes (decision 80). The quotas are the isolation between tenants on a node (they must fit in
/// `cache.memory_bytes`), so nothing an upstream chooses (every tag it may, a new directory or a
/// `Vary` on every answer, `Expires` without `Date`) may make a tenant hold more than it is charged.
///
/// Two kinds of charge:
/// - an entry's own, fixed when it is stored (`CacheEntry.chargedBytes` and
///   `TenantPartition.Slot.charge`): its slot, its records by slot number, and its memberships in
///   the index sets;
/// - an index key's, charged while the key exists, whichever entry made it (`indexBytes`, and
///   `DirectoryGroups.chargedBytes`): a tag's or a prefix's set, a primary's `Variants` record, a
///   directory's group. A tag shared by a thousand entries is charged once, not a thousand times.
///
/// The figures are upper bounds for a table that has just doubled (three eighths full), measured by
/// `edge-bench partition-memory` (every shape, in `make bench-smoke`), which fails when an entry's
/// RSS is more than its charge.
enum PartitionCharges {
    /// An entry's slot (80 bytes), its slot table bucket, its slab record's header and its place in
    /// its directory group (143 bytes in `make bench-memory`, decision 79).
    static let entry = 160
    /// Each digest of the entry's target's prefixes (kept as before decision 80).
    static let prefixDigest = 48
    /// A record by slot number holding one value: a full storage digest, a variant's primary, a
    /// lifetime (a dictionary entry at three eighths full).
    static let slotRecord = 128
    /// A record by slot number holding an array (tags, further own prefixes): the entry and the
    /// array's header and allocation; each digest in it is `digestInRecord` more.
    static let arrayRecord = 128
    /// A digest kept in a record (32 bytes, no slack: arrays are made to size).
    static let digestInRecord = 32
    /// One member of a digest set (a tag's, a prefix's, a primary's variants).
    static let setMember = 96
    /// A key of a digest-keyed index (a tag's or a prefix's set), while it exists.
    static let indexKey = 192
    /// A primary's `Variants` record while it exists; its vary names (`varyNames`) and own prefixes
    /// (`digestInRecord + setMember` each: the primary is a member of each prefix's set) are more.
    static let variantsRecord = 320
    /// A vary name in the record: a `String` (16 bytes); one longer than the 15 bytes Swift keeps
    /// inline is an allocation of its own as well, charged for its length and the allocation's
    /// header and rounding. The upstream chooses the names and how many.
    static let varyName = 16
    static let longVaryName = 64
    /// A directory's group while it exists; each of its prefixes is `digestInRecord + setMember`
    /// more, and `indexKey` more when the group is the first under it.
    static let directoryGroup = 256

    /// The vary names of a `Variants` record.
    static func varyNames(_ names: [String]) -> Int {
        names.reduce(0) { $0 + varyName + ($1.utf8.count > 15 ? longVaryName + $1.utf8.count : 0) }
    }

    /// A primary's `Variants` record with these vary names and own prefixes (their index keys apart).
    static func variants(varyNames names: [String], ownPrefixes: Int) -> Int {
        variantsRecord + varyNames(names) + ownPrefixes * (digestInRecord + setMember)
    }

    /// A directory's group of `prefixes` prefixes (their index keys apart).
    static func group(prefixes: Int) -> Int {
        directoryGroup + prefixes * (digestInRecord + setMember)
    }

    /// Adds `member` to `key`'s set in `index`: the bytes of the key it made, or 0.
    static func add(_ member: KeyDigest, under key: KeyDigest, in index: inout [KeyDigest: DigestSet]) -> Int {
        if index[key]?.insert(member) != nil { return 0 }
        var set = DigestSet()
        set.insert(member)
        index[key] = set
        return indexKey
    }

    /// Takes `member` out of `key`'s set in `index`: the bytes of the key it dropped, or 0.
    static func remove(_ member: KeyDigest, under key: KeyDigest, in index: inout [KeyDigest: DigestSet]) -> Int {
        guard index[key]?.remove(member) != nil, index[key]?.isEmpty == true else { return 0 }
        index[key] = nil
        return indexKey
    }
}
