extension TenantPartition {
    /// One stored entry's bookkeeping: 80 bytes (was 152, decision 79). What most entries need is
    /// here; what few need is in the partition's side tables, keyed by slot number, and a flag says
    /// which: the full storage digest (a variant, or an entry with tags or further own prefixes, whose
    /// removal must find it in other indexes), the tag digests, further own prefixes, and a
    /// lifetime whose windows are not whole seconds.
    ///
    /// A slot is found by the first word of its storage digest (`keyWord`). Two digests sharing it
    /// (keyed HMACs: about one pair in 2⁶⁴, and nobody without the tenant's key can choose one) make
    /// a lookup of one find the other's entry, which does not open: the sealed bytes are bound to
    /// the whole digest the request computed (`TenantCache.open`), so it is a miss and a
    /// `decrypt_failed` event, never the other's answer.
    struct Slot {
        struct Flags: OptionSet {
            let rawValue: UInt8
            static let hasValidator = Flags(rawValue: 1 << 0)
            static let explicitlyPublic = Flags(rawValue: 1 << 1)
            /// The whole storage digest is in `fullKeys`.
            static let keptInFull = Flags(rawValue: 1 << 2)
            /// The tag digests are in `tagsOfSlot`.
            static let tagged = Flags(rawValue: 1 << 3)
            /// The lifetime is in `wideLifetimes`.
            static let wideLifetime = Flags(rawValue: 1 << 4)
            /// Stored under a variant digest; its primary is in `primaryOfVariant`.
            static let variant = Flags(rawValue: 1 << 5)
            /// Further own prefixes (the path, when the target has a query) are in `moreOwnPrefixes`.
            static let moreOwnPrefixes = Flags(rawValue: 1 << 6)
        }

        var keyWord: UInt64
        var sealed: SealedBytes
        var responseTime: Double
        var initialAge: Double
        var generation: UInt64
        /// The lifetime's windows in whole seconds; all 0 when `wideLifetime`.
        var freshness: UInt32
        var keep: UInt32
        var staleWhileRevalidate: UInt32
        var staleIfError: UInt32
        /// Bytes charged to the quota for this entry for as long as it is stored (`PartitionCharges`): its
        /// own and its records', not the index keys it shares.
        var charge: UInt32
        var newer: Int32
        var older: Int32
        var flags: Flags

        /// A free slot (its number is in `freeSlots`).
        static let free = Slot(
            keyWord: 0, sealed: SealedBytes([]), responseTime: 0, initialAge: 0, generation: 0,
            freshness: 0, keep: 0, staleWhileRevalidate: 0, staleIfError: 0,
            charge: 0, newer: -1, older: -1, flags: [])

        /// What an entry's slot charges beyond `CacheEntry.chargedBytes`, for where it goes
        /// (`PartitionCharges`): its prefix digests, its full storage digest, a variant's primary and
        /// membership of its primary's variants, and further own prefixes.
        static func charge(prefixes: Int, keptInFull: Bool, variant: Bool, furtherPrefixes: Int) -> Int {
            var charge = prefixes * PartitionCharges.prefixDigest
            if keptInFull { charge += PartitionCharges.slotRecord }
            if variant { charge += PartitionCharges.slotRecord + PartitionCharges.setMember }
            if furtherPrefixes > 0 {
                charge +=
                    PartitionCharges.arrayRecord
                    + furtherPrefixes * (PartitionCharges.digestInRecord + PartitionCharges.setMember)
            }
            return charge
        }

        /// The lifetime as whole seconds, when each window is one below 2³². A window that came from
        /// `Cache-Control` or the default TTL is; one from `Expires` without `Date` may not be. The
        /// sign is checked too: the sealed value is bound to each `Double` bit for bit, and `-0.0`
        /// would come back as `0.0` and no longer open.
        static func wholeSeconds(_ lifetime: StoragePolicy.Lifetime) -> (UInt32, UInt32, UInt32, UInt32)? {
            func whole(_ value: Double) -> UInt32? { value.sign == .plus ? UInt32(exactly: value) : nil }
            guard let freshness = whole(lifetime.freshness), let keep = whole(lifetime.keep),
                let swr = whole(lifetime.staleWhileRevalidate), let sie = whole(lifetime.staleIfError)
            else { return nil }
            return (freshness, keep, swr, sie)
        }

        /// The lifetime held in the slot itself (callers check `wideLifetime` first).
        var compactLifetime: StoragePolicy.Lifetime {
            StoragePolicy.Lifetime(
                freshness: Double(freshness), initialAge: initialAge,
                staleWhileRevalidate: Double(staleWhileRevalidate),
                staleIfError: Double(staleIfError), hasValidator: flags.contains(.hasValidator), keep: Double(keep),
                explicitlyPublic: flags.contains(.explicitlyPublic))
        }
    }

    /// The entry slot `index` holds, as the cache rules and the cipher take it.
    func entry(at index: Int) -> CacheEntry {
        let number = Int32(truncatingIfNeeded: index)
        let slot = slots[index]
        var lifetime = slot.compactLifetime
        if slot.flags.contains(.wideLifetime) {
            if let wide = wideLifetimes[number] {
                lifetime = wide
            } else {
                // Cannot happen (`writeMetadata` sets both): an expired entry is dropped, where a trap
                // would take every tenant's traffic down.
                assertionFailure("slot \(index) flags a wide lifetime it does not have")
                lifetime.freshness = 0
                lifetime.keep = 0
            }
        }
        return CacheEntry(
            sealedBytes: slot.sealed, responseTime: slot.responseTime, lifetime: lifetime,
            tagDigests: slot.flags.contains(.tagged) ? tagsOfSlot[number] ?? [] : [], generation: slot.generation)
    }

    /// Writes `entry`'s times, lifetime, generation and tags into slot `index`, and its side tables;
    /// the sealed bytes are placed apart (`placeSealed`), the tag index is the caller's.
    mutating func writeMetadata(of entry: CacheEntry, at index: Int) {
        let number = Int32(truncatingIfNeeded: index)
        slots[index].responseTime = entry.responseTime
        slots[index].initialAge = entry.lifetime.initialAge
        slots[index].generation = entry.generation
        var flags = slots[index].flags.subtracting([.hasValidator, .explicitlyPublic, .wideLifetime, .tagged])
        if entry.lifetime.hasValidator { flags.insert(.hasValidator) }
        if entry.lifetime.explicitlyPublic { flags.insert(.explicitlyPublic) }
        let whole = Slot.wholeSeconds(entry.lifetime)
        (slots[index].freshness, slots[index].keep, slots[index].staleWhileRevalidate, slots[index].staleIfError) =
            whole ?? (0, 0, 0, 0)
        if whole == nil {
            flags.insert(.wideLifetime)
            wideLifetimes[number] = entry.lifetime
        } else if slots[index].flags.contains(.wideLifetime) {
            wideLifetimes[number] = nil
        }
        if !entry.tagDigests.isEmpty {
            flags.insert(.tagged)
            tagsOfSlot[number] = entry.tagDigests
        } else if slots[index].flags.contains(.tagged) {
            tagsOfSlot[number] = nil
        }
        slots[index].flags = flags
    }
}
