import Logging
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode

/// Purge subscriptions across a Sentinel switch, with two real redis-servers standing for the old
/// primary (alive, as if cut off from the sentinels) and the new one: a subscription must end on
/// the new primary, or this node hears none of its siblings' purges there.
@Suite("Sibling purge subscriptions across a primary switch", .serialized)
struct SiblingPurgeSwitchTests {
    /// Subscribers of acme's purge channel on `redis`.
    static func subscribers(_ redis: RedisProcess) throws -> Int {
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: redis.port)
        let connection = try RedisConnection.open(endpoint, timeoutMs: 1000)
        let channel = PurgeNotice.channel(tenant: "acme", database: 0)
        guard case .array(let reply) = try connection.command("PUBSUB", "NUMSUB", channel), reply.count == 2,
            case .integer(let count) = reply[1]
        else { return -1 }
        return count
    }

    static func follower(
        address: RedisPrimaryAddress, clock: ManualCacheClock, onRead: @escaping @Sendable () -> Void = {}
    ) -> SiblingPurgeFollower {
        SiblingPurgeFollower(
            primary: {
                guard let (primary, epoch) = address.current() else { return nil }
                onRead()
                return (RedisEndpoint(host: primary.host, port: primary.port), epoch)
            }, tenants: ["acme"], nodeID: "node-x", timeoutMs: 500, clock: clock, logger: Logger(label: "test"),
            apply: { _, _ in 0 }, drop: { _, _ in 0 }, acknowledge: { _, _, _, _ in })
    }

    /// The switch lands while the subscription is being made on the old primary: the switch finds no
    /// connection to drop, and the follower used to stay on the old primary for good. It now checks
    /// the address epoch once subscribed and tries again on the new primary.
    @Test func aSwitchWhileSubscribingEndsOnTheNewPrimary() async throws {
        let (old, new) = (try RedisProcess(), try RedisProcess())
        let address = RedisPrimaryAddress(followingSentinel: ())
        address.update(.init(host: "127.0.0.1", port: old.port))
        let reads = Locked(0)
        let clock = ManualCacheClock()
        let follower = Self.follower(address: address, clock: clock) {
            // The first read: the sentinels name the new primary right after it.
            if reads.modify({ count in
                count += 1
                return count
            }) == 1 {
                address.update(.init(host: "127.0.0.1", port: new.port))
            }
        }
        let following = Task { await follower.run() }
        try await waitUntil(seconds: 5, advancing: clock) {
            try Self.subscribers(new) == 1 && Self.subscribers(old) == 0
        }
        #expect(reads.value >= 3, "made once on the old primary, then again")
        await follower.stop()
        following.cancel()
    }

    /// A follower already subscribed, of the running table or of one prepared and not yet swapped in,
    /// moves once the switch is published: `SiblingFollowers.resubscribeAll` reaches every live one.
    @Test func aPublishedSwitchMovesEveryLiveFollower() async throws {
        let (old, new) = (try RedisProcess(), try RedisProcess())
        let address = RedisPrimaryAddress(followingSentinel: ())
        address.update(.init(host: "127.0.0.1", port: old.port))
        let clock = ManualCacheClock()
        let followers = SiblingFollowers()
        let service = Task { try await followers.run() }
        let running = Self.follower(address: address, clock: clock)
        let prepared = Self.follower(address: address, clock: clock)
        followers.start([running])
        followers.start([prepared])
        try await waitUntil(seconds: 5, advancing: clock) { try Self.subscribers(old) == 2 }
        address.update(.init(host: "127.0.0.1", port: new.port))
        followers.resubscribeAll()
        try await waitUntil(seconds: 5, advancing: clock) {
            try Self.subscribers(new) == 2 && Self.subscribers(old) == 0
        }
        await running.stop()
        await prepared.stop()
        service.cancel()
    }
}
