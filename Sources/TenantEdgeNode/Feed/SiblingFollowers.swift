import ServiceLifecycle
import Synchronization

/// Runs the sibling purge followers of every tenant table, a `Service`: a table's followers start
/// when it is built (so the new table hears siblings' purges before it is swapped in) and end when
/// the table is retired or discarded (`SiblingPurgeFollower.stop`), or when the node stops.
final class SiblingFollowers: Service, Sendable {
    private let started: AsyncStream<SiblingPurgeFollower>
    private let input: AsyncStream<SiblingPurgeFollower>.Continuation
    /// Every follower started and not yet ended: the running table's, and a prepared one's.
    private let live = Mutex<[ObjectIdentifier: SiblingPurgeFollower]>([:])

    init() { (started, input) = AsyncStream.makeStream(of: SiblingPurgeFollower.self) }

    /// Starts following; callable from any thread, before or while the service runs.
    func start(_ followers: [SiblingPurgeFollower]) {
        for follower in followers {
            live.withLock { $0[ObjectIdentifier(follower)] = follower }
            input.yield(follower)
        }
    }

    /// Makes every live follower subscribe anew, after the L2 primary moved. A prepared table's
    /// followers count too: they subscribed before the switch and become the only ones at the swap.
    func resubscribeAll() {
        for follower in live.withLock({ Array($0.values) }) { follower.resubscribe() }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            await withDiscardingTaskGroup { group in
                for await follower in started {
                    group.addTask {
                        await follower.run()
                        self.live.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(follower)) }
                    }
                }
            }
        }
        input.finish()
    }
}
