import Testing

@testable import TenantEdgeCore

/// The feed follower's rules, driven by hand: each step is an input and the action it must lead to.
@Suite("Invalidation feed follower")
struct FeedFollowerTests {
    static func answer(head: Int, seqs: [Int]) -> [UInt8] {
        let events = seqs.map { #"{"seq":\#($0),"tenant":"acme","keys":["/k\#($0)"],"published_at":""}"# }
        return Array(#"{"head":\#(head),"events":[\#(events.joined(separator: ","))]}"#.utf8)
    }

    static func event(_ seq: Int) -> InvalidationEvent {
        InvalidationEvent(seq: seq, purge: PurgeRequest(tenant: "acme", keys: ["/k\(seq)"]), publishedAt: "")
    }

    @Test func startsWithTheBundleThenPollsFromTheSavedCursor() {
        var follower = FeedFollower(cursor: 7)
        #expect(follower.start() == .pullBundle)
        #expect(follower.bundlePulled(answered: true) == .poll(after: 7))
        #expect(follower.received(status: 200, body: Self.answer(head: 7, seqs: []), after: 7) == .poll(after: 7))
        #expect(follower.cursor == 7)
    }

    @Test func aBundlePullWithoutAnAnswerIsTriedAgainBeforeTheNextPoll() {
        var follower = FeedFollower(cursor: 0)
        _ = follower.start()
        #expect(follower.bundlePulled(answered: false) == .poll(after: 0))
        #expect(follower.received(status: 200, body: Self.answer(head: 0, seqs: []), after: 0) == .pullBundle)
        #expect(follower.bundlePulled(answered: true) == .poll(after: 0))
        #expect(follower.received(status: 200, body: Self.answer(head: 0, seqs: []), after: 0) == .poll(after: 0))
    }

    /// A pull refused for good (a token for another region) while polls are answered: the pull is
    /// tried after 1, 2, 4, 8, then every 16 polls, not before each one (it cost every event one round
    /// trip more: us-east's p50 was 460 ms over a 150 ms link instead of 300 ms).
    @Test func aPullThatKeepsFailingWhilePollsSucceedIsSpacedOut() {
        var follower = FeedFollower(cursor: 0)
        #expect(follower.start() == .pullBundle)
        var pollsBetweenPulls: [Int] = []
        var action = follower.bundlePulled(answered: false)
        var polls = 0
        while pollsBetweenPulls.count < 7 {
            switch action {
            case .pullBundle:
                pollsBetweenPulls.append(polls)
                polls = 0
                action = follower.bundlePulled(answered: false)
            case .poll(let after):
                polls += 1
                let answer = Self.answer(head: after + 1, seqs: [after + 1])
                action = follower.received(status: 200, body: answer, after: after)
                if case .apply = action { action = follower.applied() }
            default:
                Issue.record("unexpected \(action)")
                return
            }
        }
        #expect(pollsBetweenPulls == [1, 2, 4, 8, 16, 16, 16])
        #expect(follower.pullFailures == 8)
        #expect(follower.cursor == 1 + 2 + 4 + 8 + 16 * 3, "every event was applied meanwhile")
        // An outage: the failing pull is tried first again, not after 16 more polls; and when it fails
        // once more just before the origin answers a poll again, the outage's end still brings it next.
        let cursor = follower.cursor
        let empty = Self.answer(head: cursor, seqs: [])
        #expect(follower.failed(reason: "down") == .backOff(seconds: 0.2, report: 1, reason: "down"))
        #expect(follower.waited() == .pullBundle)
        #expect(follower.bundlePulled(answered: false) == .poll(after: cursor))
        #expect(follower.received(status: 200, body: empty, after: cursor) == .pullBundle, "the outage ended here")
        #expect(follower.bundlePulled(answered: true) == .poll(after: cursor))
        #expect(follower.pullFailures == 0)
        #expect(follower.received(status: 200, body: empty, after: cursor) == .poll(after: cursor))
        // Answered: a later refusal (after the next outage) is tried again after one poll, not sixteen.
        _ = follower.failed(reason: "down")
        #expect(follower.waited() == .poll(after: cursor))
        #expect(follower.received(status: 200, body: empty, after: cursor) == .pullBundle)
        _ = follower.bundlePulled(answered: false)
        #expect(follower.received(status: 200, body: empty, after: cursor) == .pullBundle)
    }

    @Test func eventsMoveTheCursorOnlyOnceAppliedAndDurable() {
        var follower = FeedFollower(cursor: 2)
        _ = follower.start()
        _ = follower.bundlePulled(answered: true)
        let action = follower.received(status: 200, body: Self.answer(head: 4, seqs: [3, 4]), after: 2)
        #expect(action == .apply([Self.event(3), Self.event(4)], cursor: 4))
        #expect(follower.cursor == 2, "not before it is durable")
        #expect(follower.applied() == .poll(after: 4))
        #expect(follower.cursor == 4)
    }

    @Test func aCursorThatCannotBeSavedKeepsTheOldOneAndBacksOff() {
        var follower = FeedFollower(cursor: 2)
        _ = follower.start()
        _ = follower.bundlePulled(answered: true)
        _ = follower.received(status: 200, body: Self.answer(head: 3, seqs: [3]), after: 2)
        #expect(follower.persistFailed(reason: "disk full") == .backOff(seconds: 0.2, report: 1, reason: "disk full"))
        #expect(follower.cursor == 2)
        #expect(follower.waited() == .poll(after: 2), "the same events come again")
    }

    @Test func gapsRepeatsAndGarbageAreFailuresThatApplyNothing() {
        for (body, status) in [
            (Self.answer(head: 5, seqs: [4]), 200),  // skips 3
            (Self.answer(head: 5, seqs: [2, 3]), 200),  // repeats 2
            (Self.answer(head: 3, seqs: [3, 4]), 200),  // beyond the head
            (Array("not json".utf8), 200),
            (Array(#"{"head":9}"#.utf8), 200),
            (Array(#"{"head":9}"#.utf8), 500),
        ] {
            var follower = FeedFollower(cursor: 2)
            _ = follower.start()
            _ = follower.bundlePulled(answered: true)
            guard case .backOff(_, let report, _) = follower.received(status: status, body: body, after: 2) else {
                Issue.record("accepted: \(String(decoding: body, as: UTF8.self))")
                continue
            }
            #expect(report == 1)
            #expect(follower.cursor == 2 && follower.failures == 1)
        }
    }

    @Test func goneMeansPurgeEverythingAndResumeFromTheHead() {
        var follower = FeedFollower(cursor: 1)
        _ = follower.start()
        _ = follower.bundlePulled(answered: true)
        #expect(
            follower.received(status: 410, body: Array(#"{"head":40}"#.utf8), after: 1)
                == .purgeEverything(cursor: 40, expired: 1))
        #expect(follower.applied() == .poll(after: 40))
    }

    @Test func failuresBackOffDoublingToFiveSecondsReportSparselyAndEndWithABundlePull() {
        var follower = FeedFollower(cursor: 0)
        _ = follower.start()
        _ = follower.bundlePulled(answered: true)
        var waits: [Double] = []
        var reports: [Int] = []
        for _ in 1...40 {
            guard case .backOff(let seconds, let report, _) = follower.failed(reason: "refused") else {
                Issue.record("a failure that does not back off")
                return
            }
            waits.append(seconds)
            if let report { reports.append(report) }
            #expect(follower.waited() == .poll(after: 0))
        }
        #expect(Array(waits.prefix(7)) == [0.2, 0.4, 0.8, 1.6, 3.2, 5, 5])
        #expect(waits.max() == FeedFollower.longestBackoff)
        #expect(reports == [1, 20, 40], "an outage writes a bounded number of lines")
        // The origin is back: the outage may have hidden a push, so the bundle comes first.
        #expect(follower.received(status: 200, body: Self.answer(head: 0, seqs: []), after: 0) == .pullBundle)
        #expect(follower.failures == 0)
        guard case .backOff(let seconds, _, _) = follower.failed(reason: "again") else { return }
        #expect(seconds == FeedFollower.firstBackoff, "the backoff starts over after an answer")
    }

    @Test func aSavedCursorOutOfRangeStartsOver() {
        #expect(FeedFollower(cursor: -3).cursor == 0)
        #expect(FeedFollower(cursor: FeedAnswer.largestSequence + 1).cursor == 0)
    }
}

/// The erasure confirmer's rules: send, retry with a capped backoff, confirm or give up.
@Suite("Erasure confirmer")
struct ErasureConfirmerTests {
    @Test func aConfirmedErasureEndsAndAnUnansweredOneRetriesThenGivesUp() {
        var confirmer = ErasureConfirmer()
        #expect(confirmer.erased(tenant: "acme") == .send(tenant: "acme"))
        #expect(confirmer.answered(tenant: "acme", status: 200) == .confirmed(tenant: "acme"))
        #expect(confirmer.pending.isEmpty)

        #expect(confirmer.erased(tenant: "newco") == .send(tenant: "newco"))
        var waits: [Double] = []
        var last: ErasureConfirmer.Action?
        for status in [nil, 503, 401, nil, nil, 500, nil, nil, nil, nil] as [Int?] {
            let action = confirmer.answered(tenant: "newco", status: status)
            last = action
            guard case .retry(_, let seconds) = action else { break }
            waits.append(seconds)
            #expect(confirmer.waited(tenant: "newco") == .send(tenant: "newco"))
        }
        #expect(waits == [0.4, 0.8, 1.6, 3.2, 6.4, 10, 10, 10, 10])
        #expect(last == .giveUp(tenant: "newco", attempts: ErasureConfirmer.attempts))
        #expect(confirmer.pending.isEmpty && confirmer.waited(tenant: "newco") == nil)
    }

    @Test func tenantsAreFollowedApartAndAnErasureAgainStartsTheCountOver() {
        var confirmer = ErasureConfirmer()
        _ = confirmer.erased(tenant: "a")
        _ = confirmer.erased(tenant: "b")
        _ = confirmer.answered(tenant: "a", status: nil)
        _ = confirmer.answered(tenant: "a", status: nil)
        #expect(confirmer.pending == ["a": 2, "b": 0])
        #expect(confirmer.answered(tenant: "b", status: 200) == .confirmed(tenant: "b"))
        _ = confirmer.erased(tenant: "a")
        #expect(confirmer.pending == ["a": 0])
    }
}

/// The manual clock's sleepers: time passes by `advance`, never by waiting.
@Suite("Manual clock")
struct ManualCacheClockTests {
    @Test func aSleeperWakesOnlyWhenTheClockPassesItsDeadline() async throws {
        let clock = ManualCacheClock(100)
        let woke = Task {
            try await clock.sleep(seconds: 5)
            return clock.now()
        }
        while clock.sleeperCount == 0 { await Task.yield() }
        clock.advance(by: 4)
        #expect(clock.sleeperCount == 1, "4 s of 5: still asleep")
        clock.advance(by: 1)
        #expect(try await woke.value == 105)
        #expect(clock.sleeperCount == 0)
    }

    @Test func aCancelledSleeperThrowsAndLeaves() async {
        let clock = ManualCacheClock()
        let sleeper = Task { try await clock.sleep(seconds: 60) }
        while clock.sleeperCount == 0 { await Task.yield() }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleeperCount == 0)
    }
}
