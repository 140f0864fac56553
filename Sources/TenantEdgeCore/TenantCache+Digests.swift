/// How a tenant's cache names what it holds: every key, variant, tag and prefix becomes a keyed
/// digest under the tenant's naming key, domain-separated (`k`, `v`, `t`, `p`) so a tag can never
/// collide with a key or prefix. Digests are the hit path's largest cost after the cipher, so the
/// ones a request would compute again are remembered per lane.
extension TenantCache {
    /// A request asks for its target's digest up to three times (the L1 lookup, the L2 read, the
    /// store or promotion); each lane remembers the last one, so it costs one HMAC.
    public func primaryDigest(target: String) -> KeyDigest {
        let remembered = lastPrimaryDigest.withValue(make: { (target: "", digest: nil) }) { last -> KeyDigest in
            // Bytes, not `==`: two canonically equivalent strings are equal but digest differently.
            if let digest = last.digest, last.target.hasSameUTF8(as: target) { return digest }
            let digest = cipher.digest(domain: UInt8(ascii: "k"), target)
            last = (target, digest)
            return digest
        }
        return remembered ?? cipher.digest(domain: UInt8(ascii: "k"), target)
    }

    public func variantDigest(target: String, varyNames: [String], requestHeaders: [HeaderField]) -> KeyDigest {
        var text = "v\u{0}" + target
        for name in varyNames { text += "\u{0}\(name)=\(requestHeaders.combined(name) ?? "")" }
        return cipher.digest(text)
    }

    public func tagDigest(_ tag: String) -> KeyDigest { cipher.digest(domain: UInt8(ascii: "t"), tag) }
    public func prefixDigest(_ prefix: String) -> KeyDigest { cipher.digest(domain: UInt8(ascii: "p"), prefix) }

    /// Most segment-boundary prefixes indexed for one target. A path of 16 KB of slashes would
    /// otherwise cost 32,000 digests; deeper prefixes are not indexed (a prefix purge reaches 32
    /// segments deep; the whole path and target always are).
    public static let maxIndexedSegments = 32

    /// The prefixes a target is indexed under: every path-segment boundary (`/`, `/v1`, `/v1/`, …)
    /// up to `maxIndexedSegments` deep, the whole path and the whole target. A prefix purge matches
    /// on these boundaries only, which is what lets the index hold digests instead of URLs
    /// (docs/caching.md, "Purging").
    public static func prefixes(of target: String) -> [String] {
        let path = QueryString.split(target: target).path
        let bytes = path.utf8
        var result: [String] = []
        var segments = 0
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if bytes[index] == UInt8(ascii: "/") {
                if index != bytes.startIndex { result.append(String(path[..<index])) }
                segments += 1
                if segments > maxIndexedSegments { break }
                result.append(String(path[...index]))
            }
            bytes.formIndex(after: &index)
        }
        // Every prefix is a prefix of the path, so lengths tell whether the path is among them.
        if result.last?.utf8.count != bytes.count { result.append(String(path)) }
        if target.utf8.count != bytes.count { result.append(target) }
        return result
    }

    /// The digests of `prefixes(of: target)`. The prefixes up to the last `/` of the path (`/`,
    /// `/v1`, `/v1/`) are shared by every entry in that directory, so their digests are remembered
    /// per lane and directory, at most `memoizedDigestCount` digests in all, for directories under
    /// `memoizedDirectoryBytes` (a client inventing paths cannot grow it; a full memo is emptied).
    /// The whole path and target are digested every time. An HMAC cost about 5,500 instructions
    /// through `EVP_MAC` (fewer since decision 67), and promoting `/v1/blob/1?size=1024` from L2
    /// needed seven before.
    public func prefixDigests(of target: String) -> [KeyDigest] { indexedPrefixes(of: target).digests }

    /// `prefixDigests(of:)`, and how many of them, from the first, are the directory's (the prefixes
    /// up to the path's last `/`, shared by every target in it: `TenantPartition` indexes those once
    /// per directory). 0 when the directory is not remembered: then every digest is the entry's own.
    public func indexedPrefixes(of target: String) -> (digests: [KeyDigest], directoryCount: Int) {
        let path = QueryString.split(target: target).path
        let bytes = path.utf8
        guard let lastSlash = bytes.lastIndex(of: UInt8(ascii: "/")),
            bytes.distance(from: bytes.startIndex, to: lastSlash) < Self.memoizedDirectoryBytes,
            Self.isMemoizable(bytes[...lastSlash])
        else { return (Self.prefixes(of: target).map(prefixDigest), 0) }
        let directory = String(path[...lastSlash])
        let shared =
            prefixDigestMemo.withValue(make: { PrefixDigestMemo() }) { memo -> [KeyDigest] in
                if let known = memo.digests[directory] { return known }
                let digests = Self.prefixes(of: directory).map(prefixDigest)
                if memo.held + digests.count > Self.memoizedDigestCount {
                    memo.digests.removeAll(keepingCapacity: true)
                    memo.held = 0
                }
                memo.digests[directory] = digests
                memo.held += digests.count
                return digests
            } ?? Self.prefixes(of: directory).map(prefixDigest)
        var result = shared
        if bytes.count != directory.utf8.count { result.append(prefixDigest(String(path))) }
        if target.utf8.count != bytes.count { result.append(prefixDigest(target)) }
        return (result, shared.count)
    }

    /// A directory whose prefixes are all indexed (no deeper than `maxIndexedSegments`) and that
    /// is ASCII: the memo is a `String` dictionary, which compares by canonical equivalence, and
    /// only for ASCII is that the same as comparing the bytes the digest is made of (traffic
    /// targets are ASCII; this keeps the memo right for anything else).
    static func isMemoizable(_ directory: Substring.UTF8View.SubSequence) -> Bool {
        var slashes = 0
        for byte in directory {
            if byte >= 0x80 { return false }
            if byte == UInt8(ascii: "/") { slashes += 1 }
        }
        return slashes <= maxIndexedSegments
    }

    /// Per lane: directory → the digests of its prefixes, and how many digests are held.
    struct PrefixDigestMemo {
        var digests: [String: [KeyDigest]] = [:]
        var held = 0
    }

    static let memoizedDigestCount = 128
    static let memoizedDirectoryBytes = 96
}
