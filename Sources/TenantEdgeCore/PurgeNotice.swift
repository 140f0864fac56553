import Foundation

/// What a node tells its siblings through the region's Redis when it purged, so their L1 drops the
/// same entries at once. Digests only, never URLs, tags or prefixes in clear.
///
/// Wire form, published by the purge scripts themselves (atomically with the purge, on channel
/// `te:<tenant>:purge:<database>`): `<fence> <node> <kind> <digest>…` with digests in base64url and `kind`
/// `k` (entries by primary digest), `i` (index digests: tags, path prefixes, and the primaries that
/// variants hang from) or `a` (the whole tenant). `fence` is the tenant's purge fence after it.
public struct PurgeNotice: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case keys = "k"
        case indexes = "i"
        case all = "a"
    }

    public var fence: Int
    public var node: String
    public var kind: Kind
    public var digests: [KeyDigest]

    public init(fence: Int, node: String, kind: Kind, digests: [KeyDigest]) {
        self.fence = fence
        self.node = node
        self.kind = kind
        self.digests = digests
    }

    /// Nil for anything that is not a well-formed notice (it is then ignored, never half-applied).
    public init?(payload: [UInt8]) {
        let fields = payload.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count >= 3, let fence = Int(fields[0]), let kind = Kind(rawValue: fields[2]) else { return nil }
        var digests: [KeyDigest] = []
        for field in fields.dropFirst(3) {
            guard let digest = KeyDigest(base64URL: field) else { return nil }
            digests.append(digest)
        }
        self.init(fence: fence, node: fields[1], kind: kind, digests: digests)
    }

    public var payload: [UInt8] {
        Array(([String(fence), node, kind.rawValue] + digests.map(\.base64URL)).joined(separator: " ").utf8)
    }

    /// The channel a tenant's notices go to. Pub/sub ignores `SELECT`, so the channel names the
    /// logical database: fleets in different databases of one Redis never hear each other.
    public static func channel(tenant: String, database: Int) -> String { "te:\(tenant):purge:\(database)" }

    /// The tenant a channel belongs to, if it is one of `channel(tenant:database:)` for `database`.
    public static func tenant(ofChannel channel: String, database: Int) -> String? {
        let suffix = ":purge:\(database)"
        guard channel.hasPrefix("te:"), channel.hasSuffix(suffix), channel.count > 3 + suffix.count else { return nil }
        return String(channel.dropFirst(3).dropLast(suffix.count))
    }
}

extension KeyDigest {
    /// Parses the unpadded base64url form; nil unless it is exactly 32 bytes.
    public init?(base64URL text: String) {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        guard let data = Data(base64Encoded: standard), data.count == 32 else { return nil }
        self.init(bytes: data)
    }
}
