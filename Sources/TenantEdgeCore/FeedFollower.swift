/// The node's rules for following the origin's invalidation feed, as a state machine: the I/O code
/// (the feed service) asks for the next action, performs it, and reports what happened; every rule
/// about order, gaps, `410`, backoff and when to pull the bundle again lives here and is tested by
/// the actions it returns.
///
/// The rules:
/// - the bundle is pulled first (a push may have been missed while the node was down) and again
///   after every outage, before the next poll; a pull the origin does not answer with a bundle or
///   `404` while its polls succeed (a token refused for this region, a failing bundle endpoint) is
///   tried again after 1, 2, 4, 8, then every 16 polls, so it cannot add a round trip to every
///   event's way to the node;
/// - an answer is applied only whole, in sequence after the cursor (`FeedAnswer`), and the cursor
///   moves only once its events are applied and the new cursor is durable;
/// - `410` purges every tenant and resumes from the origin's head;
/// - a failure backs off, 0.2 s doubling to 5 s, and is reported on the first failure and every
///   twentieth, so an outage writes a bounded number of log lines.
public struct FeedFollower: Sendable {
    public enum Action: Equatable, Sendable {
        /// Pull this region's bundle; then `bundlePulled(answered:)`.
        case pullBundle
        /// Long-poll for events after `after`; then `received(status:body:)` or `failed(reason:)`.
        case poll(after: Int)
        /// Apply `events` in order, make `cursor` durable; then `applied()`.
        case apply([InvalidationEvent], cursor: Int)
        /// The cursor left the origin's window: purge every tenant whole, make `cursor` durable; then `applied()`.
        case purgeEverything(cursor: Int, expired: Int)
        /// Wait up to `seconds` (the caller jitters it down to half), then `waited()`. `report` is
        /// the failure streak when this failure should be logged.
        case backOff(seconds: Double, report: Int?, reason: String)
    }

    public static let firstBackoff = 0.2
    public static let longestBackoff = 5.0

    /// The last sequence number applied and durable.
    public private(set) var cursor: Int
    /// Failures in a row; 0 while the origin answers.
    public private(set) var failures = 0
    private var backoff = FeedFollower.firstBackoff
    private var mustPullBundle = true
    /// Polls still to run before the pull is tried again, and how many the next failed pull waits.
    private var pollsBeforePull = 0
    private var pollsAfterFailedPull = 1
    /// Pulls in a row that got no usable answer; 0 once one did.
    public private(set) var pullFailures = 0
    private var pendingCursor: Int?

    /// The most polls between two tries of a failing pull.
    public static let mostPollsBetweenPulls = 16

    public init(cursor: Int) {
        self.cursor = (0...FeedAnswer.largestSequence).contains(cursor) ? cursor : 0
    }

    /// The first action after start.
    public mutating func start() -> Action { nextRound() }

    /// The bundle pull ended: `answered` when the origin answered at all (even `404` or a refusal).
    public mutating func bundlePulled(answered: Bool) -> Action {
        if answered {
            mustPullBundle = false
            pullFailures = 0
            pollsAfterFailedPull = 1
        } else {
            pullFailures += 1
            pollsBeforePull = pollsAfterFailedPull
            pollsAfterFailedPull = min(pollsAfterFailedPull * 2, Self.mostPollsBetweenPulls)
        }
        return .poll(after: cursor)
    }

    /// The origin answered a poll for events after `after`. A valid answer ends an outage.
    public mutating func received(status: Int, body: [UInt8], after: Int) -> Action {
        let answer: FeedAnswer
        do { answer = try FeedAnswer.parse(status: status, body: body, after: after) } catch {
            return failed(reason: error.message)
        }
        if failures > 0 {  // an outage ended: the pull comes next, whatever a failed one said to wait
            mustPullBundle = true
            pollsBeforePull = 0
        } else if pollsBeforePull > 0 {
            pollsBeforePull -= 1
        }
        failures = 0
        backoff = Self.firstBackoff
        switch answer {
        case .events(let events, _):
            guard let last = events.last else { return nextRound() }
            pendingCursor = last.seq
            return .apply(events, cursor: last.seq)
        case .expired(let head):
            pendingCursor = head
            return .purgeEverything(cursor: head, expired: after)
        }
    }

    /// The events (or the purge of everything) are applied and the cursor is durable.
    public mutating func applied() -> Action {
        if let pendingCursor { cursor = pendingCursor }
        pendingCursor = nil
        return nextRound()
    }

    /// The cursor could not be made durable: nothing moves, and the same events come again.
    public mutating func persistFailed(reason: String) -> Action {
        pendingCursor = nil
        return failed(reason: reason)
    }

    /// The poll or the bundle pull failed (no answer, an unreadable one, or a refused status).
    public mutating func failed(reason: String) -> Action {
        failures += 1
        pollsBeforePull = 0  // no answer at all: an outage, after which the pull comes first again
        let wait = backoff
        backoff = min(backoff * 2, Self.longestBackoff)
        let report = failures == 1 || failures % 20 == 0 ? failures : nil
        return .backOff(seconds: wait, report: report, reason: reason)
    }

    /// The backoff has elapsed.
    public mutating func waited() -> Action { nextRound() }

    private func nextRound() -> Action { mustPullBundle && pollsBeforePull == 0 ? .pullBundle : .poll(after: cursor) }
}
