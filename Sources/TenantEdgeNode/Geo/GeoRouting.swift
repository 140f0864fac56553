import Foundation
import Logging
import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// Geo-IP on the node: the client's address (the peer, or what a trusted
/// proxy says), its location in the MaxMind database, and the region chosen for it, kept per
/// address and tenant so that a repeat client costs one hash lookup.
///
/// The database can be replaced on disk while the node runs: `reload` opens the new file and
/// swaps it in; a lookup holds its own reference, so lookups in flight finish on the old one,
/// which is closed when the last of them lets go. A file that does not open keeps the old one.
public final class GeoRouting: Sendable {
    public struct DecisionKey: Hashable, Sendable {
        var tenant: String
        var address: IPAddress
    }

    /// The decision cache and the generation it belongs to: a decision computed under an older
    /// generation (before a bundle, a health change or a reload) is not stored.
    private struct DecisionTable: Sendable {
        var cache: RecentlyUsedCache<DecisionKey, RegionRouter.Decision>
        var generation = 0
    }

    let home: String
    let trustedProxies: TrustedProxies
    /// `geoip.database`; nil when none is configured.
    let path: String?
    private let database: Mutex<GeoIPDatabase?>
    /// The file last opened or refused, so a watcher tries each new file once.
    private let seenFile: Mutex<FileIdentity?>
    private let decisions: Mutex<DecisionTable>
    private let health = Mutex(RegionHealth())
    private let logger: Logger

    /// Lookups that failed (a broken record): the client gets the fallback region.
    package let lookupErrors = Atomic<Int>(0)
    let cacheHits = Atomic<Int>(0)
    let cacheMisses = Atomic<Int>(0)
    let reloads = Atomic<Int>(0)
    let reloadFailures = Atomic<Int>(0)

    public init(config: EdgeConfig, logger: Logger) throws(EdgeError) {
        home = config.node.region
        trustedProxies = try TrustedProxies(config.geoip.trustedProxies)
        self.logger = logger
        decisions = Mutex(DecisionTable(cache: RecentlyUsedCache(capacity: config.geoip.decisionCacheEntries)))
        if let path = config.geoip.database, !path.isEmpty {
            self.path = path
            let identity = FileIdentity(path: path)
            do { database = Mutex(try GeoIPDatabase(path: path)) } catch {
                throw EdgeError(.invalidConfig, "geoip.database: \(error.message)")
            }
            seenFile = Mutex(identity)
        } else {
            path = nil
            database = Mutex(nil)
            seenFile = Mutex(nil)
        }
    }

    var hasDatabase: Bool { database.withLock { $0 != nil } }

    /// The client's address for `request`: the peer, or the right-most untrusted hop of
    /// `X-Forwarded-For` when the peer is a trusted proxy.
    /// Read from the socket address and the header bytes, never through text we format.
    func clientAddress(of request: EdgeRequest) -> IPAddress? {
        guard let socket = request.peer, let peer = IPAddress(socket) else { return nil }
        guard !trustedProxies.isEmpty else { return peer }
        return trustedProxies.clientAddress(peer: peer, forwardedFor: request.head.headers["x-forwarded-for"])
    }

    /// The location of `address`; nil when the database has none (or there is no database).
    /// Throws `.badRequest` when `address` is not an IP address; a broken record is counted in
    /// `lookupErrors` and gives nil, so the caller falls back.
    public func locate(_ address: String) throws(EdgeError) -> RegionRouter.Location? {
        guard let parsed = IPAddress(address) else { throw EdgeError(.badRequest, "not an IPv4 or IPv6 address") }
        return lookUp(parsed)
    }

    /// `locate` for an address already known to be one (the socket peer, or a hop the trusted
    /// proxies' walk parsed).
    private func lookUp(_ address: IPAddress) -> RegionRouter.Location? {
        // our own reference: a reload cannot close it under us
        guard let current = database.withLock({ $0 }) else { return nil }
        do {
            return try current.lookup(address)
        } catch {
            lookupErrors.add(1, ordering: .relaxed)
            return nil
        }
    }

    /// The region for a client of `tenant` at `address`, from the cache when it was decided before.
    /// `regions` is asked only on a cache miss.
    public func decide(address: IPAddress, tenant: TenantConfig, regions: () -> [RegionConfig]) -> RegionRouter.Decision
    {
        let key = DecisionKey(tenant: tenant.id, address: address)
        let (cached, generation) = decisions.withLock { table in (table.cache.value(for: key), table.generation) }
        if let cached {
            cacheHits.add(1, ordering: .relaxed)
            return cached
        }
        cacheMisses.add(1, ordering: .relaxed)
        let location = lookUp(address)
        let known = regions()
        let decision = RegionRouter.choose(
            location: location, tenant: tenant, regions: known, healthy: healthy(known), home: home)
        decisions.withLock { table in
            if table.generation == generation { table.cache.insert(decision, for: key) }
        }
        return decision
    }

    /// Drops every cached decision: the regions, a tenant's residency, health or the database changed.
    func forgetDecisions() {
        decisions.withLock { table in
            table.cache.removeAll()
            table.generation &+= 1
        }
    }

    var cachedDecisions: Int { decisions.withLock { $0.cache.count } }

    func healthy(_ regions: [RegionConfig]) -> Set<String> { health.withLock { $0.healthy(regions, home: home) } }

    /// One probe result for a sibling region; a change is logged and drops the cached decisions.
    func recordProbe(region: String, success: Bool) {
        guard let change = health.withLock({ $0.record(region: region, success: success) }) else { return }
        switch change {
        case .wentDown(let name): logger.warning("region marked down by probes", metadata: ["region": "\(name)"])
        case .cameUp(let name): logger.info("region up again", metadata: ["region": "\(name)"])
        }
        forgetDecisions()
    }

    /// Forgets the probe state of regions a bundle removed.
    func keepHealth(only names: Set<String>) { health.withLock { $0.keep(only: names) } }

    /// Opens the database file again when it was replaced (or always, with `force`: SIGHUP) and
    /// swaps it in. Returns whether a new database is in use. Runs off the event loops (it opens a file).
    @discardableResult
    func reload(force: Bool) -> Bool {
        guard let path else { return false }
        guard let identity = FileIdentity(path: path) else {
            if force {
                logger.error("GeoIP database missing; the previous one stays in use", metadata: ["path": "\(path)"])
            }
            return false
        }
        let changed = seenFile.withLock { seen in
            defer { seen = identity }
            return seen != identity
        }
        guard force || changed else { return false }
        do {
            let opened = try GeoIPDatabase(path: path)
            let previous = database.withLock { current in
                defer { current = opened }
                return current
            }
            _ = previous  // closed here, or by the last lookup still holding it
            forgetDecisions()
            reloads.add(1, ordering: .relaxed)
            logger.info("GeoIP database reloaded", metadata: ["path": "\(path)"])
            return true
        } catch {
            reloadFailures.add(1, ordering: .relaxed)
            logger.error(
                "GeoIP database not reloaded; the previous one stays in use",
                metadata: ["path": "\(path)", "reason": "\(error.message)"])
            return false
        }
    }
}

/// What tells a replaced file from the one opened before: device, inode, size and mtime (a
/// `mv` of a new file gives a new inode; an in-place rewrite a new size or mtime).
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedNanoseconds: Int64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modifiedNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}

extension IPAddress {
    /// The address of a socket peer (IPv4, IPv6, IPv4-mapped IPv6); nil for a Unix socket.
    init?(_ socket: SocketAddress) {
        switch socket {
        case .v4(let v4):
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var address = v6.address.sin6_addr
            let halves = withUnsafeBytes(of: &address) {
                (
                    $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                    $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                )
            }
            self.init(ipv6High: UInt64(bigEndian: halves.0), low: UInt64(bigEndian: halves.1))
        case .unixDomainSocket:
            return nil
        }
    }
}
