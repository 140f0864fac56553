import ServiceLifecycle
import Synchronization

/// Runs the sibling purge followers of every tenant table, a `Service`: a table's followers start
/// when it is built (so the new table hears siblings' purges before it is swapped in) and end when
/// the table is retired or discarded (`SiblingPurgeFollower.stop`), or when the node stops.
final class SiblingFollowers: Service, Sendable {
    private let started: AsyncStream<SiblingPurgeFollower>
    private let input: AsyncStream<SiblingPurgeFollower>.Continuation

    init() { (started, input) = AsyncStream.makeStream(of: SiblingPurgeFollower.self) }

    /// Starts following; callable from any thread, before or while the service runs.
    func start(_ followers: [SiblingPurgeFollower]) {
        for follower in followers { input.yield(follower) }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [started] in
            await withDiscardingTaskGroup { group in
                for await follower in started { group.addTask { await follower.run() } }
            }
        }
        input.finish()
    }
}
