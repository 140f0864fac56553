import Foundation

/// What one node of a region tells the others through the region's Redis, for the dashboards:
/// where it stands (`NodeBeacon`) and which purges it has applied (`PurgeAcknowledgement`). Both
/// are read back from Redis, where anyone with write access could put anything: parsing is strict
/// and bounded, and a bad record is left out, never trusted in part.
public struct NodeBeacon: Codable, Sendable, Equatable {
    public var id: String
    public var region: String
    /// When it was written (seconds since the epoch, the writer's clock).
    public var at: Double
    public var cursor: Int
    public var lagSeconds: Double?
    public var configVersion: Int
    /// `redis`: up|down|none; `origin_feed`: up|down|standalone; `geoip`: loaded|none.
    public var tiers: [String: String]
    /// Key versions each tenant's cipher holds.
    public var keyVersions: [String: [UInt32]]

    enum CodingKeys: String, CodingKey {
        case id, region, at, cursor, tiers
        case lagSeconds = "lag_s"
        case configVersion = "config_version"
        case keyVersions = "key_versions"
    }

    public init(
        id: String, region: String, at: Double, cursor: Int, lagSeconds: Double?, configVersion: Int,
        tiers: [String: String], keyVersions: [String: [UInt32]]
    ) {
        self.id = id
        self.region = region
        self.at = at
        self.cursor = cursor
        self.lagSeconds = lagSeconds
        self.configVersion = configVersion
        self.tiers = tiers
        self.keyVersions = keyVersions
    }

    /// Largest beacon read back: a node with every tenant of a big config stays well under it.
    public static let maxBytes = 256 * 1024

    public func encoded() throws -> [UInt8] { Array(try JSONEncoder().encode(self)) }

    /// Nil unless `bytes` is a beacon within bounds whose finite numbers make sense.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count <= Self.maxBytes, let beacon = try? JSONDecoder().decode(Self.self, from: Data(bytes)),
            beacon.at.isFinite, beacon.cursor >= 0, beacon.configVersion >= 0,
            beacon.lagSeconds.map({ $0.isFinite && $0 >= 0 }) ?? true, !beacon.id.isEmpty, beacon.id.count <= 128
        else { return nil }
        self = beacon
    }
}

/// A node's record that it applied a tenant's purges up to a fence: `"<fence> <at> <removed>"`.
public struct PurgeAcknowledgement: Sendable, Equatable {
    public var fence: Int
    public var at: Double
    public var removed: Int

    public init(fence: Int, at: Double, removed: Int) {
        self.fence = fence
        self.at = at
        self.removed = removed
    }

    public var encoded: String { "\(fence) \(at) \(removed)" }

    public init?(decoding text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 3, let fence = Int(parts[0]), fence >= 0, let at = Double(parts[1]), at.isFinite,
            let removed = Int(parts[2]), removed >= 0
        else { return nil }
        self.init(fence: fence, at: at, removed: removed)
    }
}

/// The id a purge answer carries, `<tenant>:<fence>`: the tenant's purge fence after it, which
/// every node that applied it has reached.
public struct PurgeID: Sendable, Equatable, CustomStringConvertible {
    public var tenant: String
    public var fence: Int

    /// The fence of a purge that did not reach Redis: no acknowledgement reaches it, since no sibling
    /// heard of it (it reaches them later as a generation drop).
    public static let notPropagated = Int.max

    public init(tenant: String, fence: Int) {
        self.tenant = tenant
        self.fence = fence
    }

    public var description: String { "\(tenant):\(fence)" }

    /// Nil unless `text` is a tenant id, a colon and a fence (the last colon splits them).
    public init?(_ text: Substring) {
        guard text.count <= 200, let colon = text.lastIndex(of: ":") else { return nil }
        let tenant = String(text[..<colon])
        guard !tenant.isEmpty, let fence = Int(text[text.index(after: colon)...]), fence >= 0 else { return nil }
        self.init(tenant: tenant, fence: fence)
    }
}
