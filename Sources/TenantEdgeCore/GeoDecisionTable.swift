/// The regions chosen for client addresses, keyed by the address alone (16 bytes and a family
/// flag) and answering per residency profile: two tenants with the same `residency` share one
/// decision, and a new profile for a known address reuses the location already looked up, so a
/// repeat client costs one hash lookup and no database read. Each event loop keeps its own table
/// (no lock, no cache line shared between cores); its `epoch` tells a table that everything it
/// holds was decided before a bundle, a health change or a reload, and must go.
public struct GeoDecisionTable: Sendable {
    /// What is known about one address: its location and the decisions made for it so far.
    struct Answer: Sendable {
        var location: RegionRouter.Location?
        var decisions: [(residency: [String], decision: RegionRouter.Decision)]
    }

    /// What a lookup found.
    public enum Lookup: Sendable {
        /// Decided before under this residency.
        case decided(RegionRouter.Decision)
        /// Looked up before (for another residency): the location, nil when the database had none.
        case located(RegionRouter.Location?)
        case unknown
    }

    /// Most residency profiles remembered per address; beyond, the oldest is replaced. Profiles
    /// come from the operator's bundle, so this only bounds a pathological one.
    static let profilesPerAddress = 8

    /// What a decision was made under: the tenant table's version (bundles only ever move it up)
    /// and the count of resets (health changes, database reloads). A request carries the epoch of
    /// the table snapshot it uses, so one that started before a bundle can neither read decisions
    /// made for the new regions nor leave its own among them.
    public struct Epoch: Comparable, Sendable {
        public var tableVersion: Int
        public var resets: Int
        public init(tableVersion: Int, resets: Int) {
            self.tableVersion = tableVersion
            self.resets = resets
        }
        public static func < (lhs: Epoch, rhs: Epoch) -> Bool {
            (lhs.tableVersion, lhs.resets) < (rhs.tableVersion, rhs.resets)
        }
    }

    /// Address → location and decisions; grows as it fills (a table per event loop is not
    /// reserved up front).
    private var cache: RecentlyUsedCache<IPAddress, Answer>
    public private(set) var epoch: Epoch

    public init(capacity: Int, epoch: Epoch = Epoch(tableVersion: Int.min, resets: 0)) {
        cache = RecentlyUsedCache(capacity: capacity, reserving: false)
        self.epoch = epoch
    }

    public var count: Int { cache.count }

    /// Brings the table to `newer`, dropping everything, when `newer` is later than what it holds;
    /// an older epoch (a request that began before the change) leaves it as it is, and the caller
    /// then neither reads nor records (`epoch != newer`). Returns the change in entries (zero or
    /// minus the old count), for the caller's gauge.
    public mutating func enter(_ newer: Epoch) -> Int {
        guard newer > epoch else { return 0 }
        let dropped = cache.count
        cache.removeAll()
        epoch = newer
        return -dropped
    }

    /// `residency` is compared by value; a tenant's own array (shared storage) matches at once.
    public mutating func lookup(_ address: IPAddress, residency: [String]) -> Lookup {
        guard let answer = cache.value(for: address) else { return .unknown }
        for known in answer.decisions where known.residency == residency { return .decided(known.decision) }
        return .located(answer.location)
    }

    /// Keeps `decision` for `address` under `residency`. Returns the change in entries.
    public mutating func record(
        _ decision: RegionRouter.Decision, for address: IPAddress, residency: [String],
        location: RegionRouter.Location?
    ) -> Int {
        let before = cache.count
        var answer = cache.value(for: address) ?? Answer(location: location, decisions: [])
        answer.decisions.removeAll { $0.residency == residency }
        if answer.decisions.count >= Self.profilesPerAddress { answer.decisions.removeFirst() }
        answer.decisions.append((residency, decision))
        cache.insert(answer, for: address)
        return cache.count - before
    }
}
