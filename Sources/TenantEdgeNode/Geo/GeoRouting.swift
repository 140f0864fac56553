import Foundation
import Logging
import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// Geo-IP on the node: the client's address (the peer, or what a trusted
/// proxy says), its location in the MaxMind database, and the region chosen for it, kept per
/// event loop by address and residency profile (`GeoDecisionTable`), so that a repeat client costs
/// one hash lookup.
///
/// The database can be replaced on disk while the node runs: `reload` opens the new file and
/// swaps it in; a lookup holds its own reference, so lookups in flight finish on the old one,
/// which is closed when the last of them lets go. A file that does not open keeps the old one.
public final class GeoRouting: Sendable {
    private enum DecisionCounter: Int { case hits, misses, entries }

    let home: String
    let trustedProxies: TrustedProxies
    /// `geoip.database`; nil when none is configured.
    let path: String?
    private let database: Mutex<GeoIPDatabase?>
    /// The file last opened or refused, so a watcher tries each new file once.
    private let seenFile: Mutex<FileIdentity?>
    /// One decision table per event loop; threads without a lane share `sharedDecisions`.
    private let laneDecisions = LaneLocal<GeoDecisionTable>()
    private let sharedDecisions: Mutex<GeoDecisionTable>
    private let decisionCapacity: Int
    /// Moves when every cached decision must go (with the table version, the epoch); each table
    /// catches up on its next use.
    private let decisionResets = Atomic<Int>(0)
    /// Hits, misses and the entries held, per lane, summed when read.
    private let decisionCounters = LaneCounters(count: 3)
    private let health = Mutex(RegionHealth())
    private let logger: Logger

    /// Lookups that failed (a broken record): the client gets the fallback region.
    package let lookupErrors = Atomic<Int>(0)
    var cacheHits: Int { decisionCounters.total(DecisionCounter.hits.rawValue) }
    var cacheMisses: Int { decisionCounters.total(DecisionCounter.misses.rawValue) }
    let reloads = Atomic<Int>(0)
    let reloadFailures = Atomic<Int>(0)

    public init(config: EdgeConfig, logger: Logger) throws(EdgeError) {
        home = config.node.region
        trustedProxies = try TrustedProxies(config.geoip.trustedProxies)
        self.logger = logger
        decisionCapacity = config.geoip.decisionCacheEntries
        sharedDecisions = Mutex(GeoDecisionTable(capacity: config.geoip.decisionCacheEntries))  // grows as used
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
    /// Read from the socket address and the header bytes in place, never through text we format.
    func clientAddress(of request: EdgeRequest) -> IPAddress? {
        guard let socket = request.peer, let peer = IPAddress(socket) else { return nil }
        var walk = ForwardedForWalk(proxies: trustedProxies, peer: peer)
        guard !walk.isFinished else { return walk.client }  // an untrusted peer: the header is not read
        // Forward over the field bytes, keeping the last line; several lines (rare) are walked last
        // first from a list.
        var last: String? = nil
        var earlier: [String] = []
        request.head.headers.forEachField { name, value in
            guard ASCII.equalIgnoringCase(name, "x-forwarded-for") else { return true }
            if let previous = last { earlier.append(previous) }
            last = String(decoding: value, as: UTF8.self)
            return true
        }
        guard let last else { return walk.client }
        walk.step(last)
        for value in earlier.reversed() where !walk.isFinished { walk.step(value) }
        return walk.client
    }

    /// Whether `request` carries `X-Forwarded-For` from a peer that is not a trusted proxy: the
    /// header is ignored, and the attempt is a security event.
    func forwardedForIsUntrusted(_ request: EdgeRequest) -> Bool {
        guard let socket = request.peer, let peer = IPAddress(socket) else { return false }
        return ForwardedForWalk(proxies: trustedProxies, peer: peer).isFinished
            && request.head.headers.contains(name: "x-forwarded-for")
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

    /// The region for a client of `tenant` at `address`, from this event loop's table when it was
    /// decided before for the same residency. `regions` is asked only on a miss.
    public func decide(address: IPAddress, tenant: TenantConfig, regions: () -> [RegionConfig]) -> RegionRouter.Decision
    {
        decide(address: address, residency: tenant.residency, tableVersion: 0, regions: regions)
    }

    /// `decide` for a residency profile: the hit path passes only the tenant's `residency`, not a
    /// copy of its whole config, and the version of the table snapshot `regions` comes from.
    func decide(address: IPAddress, residency: [String], tableVersion: Int, regions: () -> [RegionConfig])
        -> RegionRouter.Decision
    {
        let epoch = GeoDecisionTable.Epoch(
            tableVersion: tableVersion, resets: decisionResets.load(ordering: .acquiring))
        let (found, dropped) = withDecisions { table -> (GeoDecisionTable.Lookup, Int) in
            let dropped = table.enter(epoch)
            guard table.epoch == epoch else { return (.unknown, dropped) }  // a request older than the table
            return (table.lookup(address, residency: residency), dropped)
        }
        if dropped != 0 { decisionCounters.add(DecisionCounter.entries.rawValue, dropped) }
        let location: RegionRouter.Location?
        switch found {
        case .decided(let decision):
            decisionCounters.add(DecisionCounter.hits.rawValue)
            return decision
        case .located(let known):
            decisionCounters.add(DecisionCounter.hits.rawValue)  // the location came from the table, not the file
            location = known
        case .unknown:
            decisionCounters.add(DecisionCounter.misses.rawValue)
            location = lookUp(address)
        }
        let known = regions()
        let decision = RegionRouter.choose(
            location: location, residency: residency, regions: known, healthy: healthy(known), home: home)
        let added = withDecisions { table in
            // decided under an older epoch (health, a reload or a bundle moved meanwhile): not kept
            guard table.epoch == epoch, decisionResets.load(ordering: .acquiring) == epoch.resets else { return 0 }
            return table.record(decision, for: address, residency: residency, location: location)
        }
        if added != 0 { decisionCounters.add(DecisionCounter.entries.rawValue, added) }
        return decision
    }

    /// Runs `body` on this event loop's decision table, or on the shared one off the event loops.
    private func withDecisions<Result>(_ body: (inout GeoDecisionTable) -> Result) -> Result {
        let capacity = decisionCapacity
        if let result = laneDecisions.withValue(make: { GeoDecisionTable(capacity: capacity) }, body) {
            return result
        }
        return sharedDecisions.withLock { body(&$0) }
    }

    /// Drops every cached decision: the regions, a tenant's residency, health or the database changed.
    /// Each table empties itself on its next use.
    func forgetDecisions() { decisionResets.add(1, ordering: .releasing) }

    /// Decisions held over every event loop (a table a new epoch retired counts until its next use).
    var cachedDecisions: Int { max(0, decisionCounters.total(DecisionCounter.entries.rawValue)) }

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
