extension TenantPartition {
    /// What storing one entry costs the quota (`PartitionCharges`, decision 80).
    struct Placement {
        /// The entry's own charge: its slot's for good.
        var charge: Int
        /// The bytes of the index keys it makes, charged while they exist.
        var keyBytes: Int
        /// Whether it joins its directory's group (false only for a digest collision).
        var joins: Bool
    }

    /// What storing `entry` costs with the partition as it is now, or, `asIfEmpty`, as if it held no
    /// index key (every key new: the most it can cost). `insert` evicts until this fits, computing it
    /// again after each eviction: an evicted entry may take a key this one would have shared.
    func placement(
        of entry: CacheEntry, primary: KeyDigest, plain: Bool, varyNames: [String], prefixDigests: [KeyDigest],
        directory: [KeyDigest], asIfEmpty: Bool
    ) -> Placement {
        let joins = !directory.isEmpty && directories.accepts(directoryPrefixes: directory)
        let own = joins ? prefixDigests[directory.count...] : prefixDigests[...]
        let further = plain ? own.dropLast() : []
        let charge =
            entry.chargedBytes
            + Slot.charge(
                prefixes: prefixDigests.count, keptInFull: !plain || !further.isEmpty || !entry.tagDigests.isEmpty,
                variant: !plain, furtherPrefixes: further.count)
        func new(_ keys: some Collection<KeyDigest>, in index: [KeyDigest: DigestSet]) -> Int {
            PartitionCharges.indexKey * (asIfEmpty ? keys.count : keys.count { index[$0] == nil })
        }
        var keys = new(entry.tagDigests, in: storageKeysByTag)
        if plain {
            keys += new(further, in: primariesByPrefix)
        } else if asIfEmpty || variantsByPrimary[primary] == nil {
            keys += PartitionCharges.variants(varyNames: varyNames, ownPrefixes: own.count)
            keys += new(own, in: primariesByPrefix)
        }
        if joins { keys += directories.cost(ofJoining: directory, asIfEmpty: asIfEmpty) }
        return Placement(charge: charge, keyBytes: keys, joins: joins)
    }
}

extension TenantPartition {
    /// `usedBytes` worked out again from what the partition holds: its slots' charges, and the
    /// charges of the index keys and records that exist. For tests that the running count never
    /// drifts from it, however entries come and go.
    var recountedUsedBytes: Int {
        let entries = slotTable.slots.reduce(0) { $0 + Int(slots[$1].charge) }
        let keys = (storageKeysByTag.count + primariesByPrefix.count) * PartitionCharges.indexKey
        let records = variantsByPrimary.values.reduce(0) {
            $0 + PartitionCharges.variants(varyNames: $1.varyNames, ownPrefixes: $1.prefixDigests.count)
        }
        return entries + keys + records + directories.recountedChargedBytes
    }
}
