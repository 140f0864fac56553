import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import TenantEdgeNode

/// `CallDeadlines`: one timer for a loop's Redis calls, on an `EmbeddedEventLoop`'s clock.
@Suite("Redis call deadlines under one timer")
struct CallDeadlinesTests {
    /// A call whose expiry claims its `Once` as `RedisTier.call`'s settle does, and counts.
    final class Call {
        let once = Once()
        var expired = 0
        func add(to deadlines: CallDeadlines, at deadline: NIODeadline) {
            deadlines.add(deadline, once: once) { [self] in
                if once.claim() { expired += 1 }
            }
        }
    }

    @Test func onlyUnansweredCallsExpireAndEachAtItsDeadline() {
        let loop = EmbeddedEventLoop()
        let deadlines = CallDeadlines(eventLoop: loop, now: { loop.now })
        let start = loop.now
        let answered = Call()
        let slow = Call()
        let later = Call()
        answered.add(to: deadlines, at: start + .milliseconds(50))
        slow.add(to: deadlines, at: start + .milliseconds(50))
        later.add(to: deadlines, at: start + .milliseconds(80))
        #expect(answered.once.claim(), "Redis answered the first")
        loop.advanceTime(by: .milliseconds(49))
        #expect(slow.expired == 0, "not before its deadline")
        loop.advanceTime(by: .milliseconds(1))
        #expect(answered.expired == 0 && slow.expired == 1 && later.expired == 0)
        #expect(deadlines.count == 1, "only the call still waiting is kept")
        loop.advanceTime(by: .milliseconds(30))
        #expect(later.expired == 1, "the timer armed itself again for the next deadline")
        #expect(deadlines.count == 0)
    }

    @Test func aShorterDeadlineAddedLaterExpiresFirst() {
        let loop = EmbeddedEventLoop()
        let deadlines = CallDeadlines(eventLoop: loop, now: { loop.now })
        let start = loop.now
        let long = Call()
        let short = Call()
        long.add(to: deadlines, at: start + .milliseconds(50))
        // A request's second call gets what is left of its timeout: an earlier deadline.
        short.add(to: deadlines, at: start + .milliseconds(10))
        loop.advanceTime(by: .milliseconds(10))
        #expect(short.expired == 1 && long.expired == 0)
        loop.advanceTime(by: .milliseconds(40))
        #expect(long.expired == 1)
    }

    @Test func answeredCallsLeaveFromTheFrontAsNewOnesArrive() {
        let loop = EmbeddedEventLoop()
        let deadlines = CallDeadlines(eventLoop: loop, now: { loop.now })
        var calls: [Call] = []
        for _ in 0..<1000 {
            let call = Call()
            call.add(to: deadlines, at: loop.now + .milliseconds(50))
            #expect(call.once.claim())
            calls.append(call)
        }
        #expect(deadlines.count == 1, "the queue holds the calls in flight, not every call made")
        loop.advanceTime(by: .milliseconds(50))
        #expect(calls.allSatisfy { $0.expired == 0 })
    }

    @Test func anExpiryThatMakesAnotherCallGetsItsDeadlineKept() {
        let loop = EmbeddedEventLoop()
        let deadlines = CallDeadlines(eventLoop: loop, now: { loop.now })
        let retry = Call()
        let first = Once()
        deadlines.add(loop.now + .milliseconds(10), once: first) {
            // The caller, told "unavailable", makes another call from inside the expiry.
            if first.claim() { retry.add(to: deadlines, at: loop.now + .milliseconds(20)) }
        }
        loop.advanceTime(by: .milliseconds(10))
        #expect(first.isClaimed && retry.expired == 0 && deadlines.count == 1)
        loop.advanceTime(by: .milliseconds(20))
        #expect(retry.expired == 1)
    }

    @Test func aSlowCallAtTheFrontDoesNotHoldEveryAnsweredCallBehindIt() {
        let loop = EmbeddedEventLoop()
        let deadlines = CallDeadlines(eventLoop: loop, now: { loop.now })
        let slow = Call()
        slow.add(to: deadlines, at: loop.now + .seconds(60))
        var largest = 0
        for _ in 0..<10_000 {
            let call = Call()
            call.add(to: deadlines, at: loop.now + .seconds(60))
            #expect(call.once.claim())
            largest = max(largest, deadlines.count)
        }
        #expect(largest < 200, "answered calls are swept: \(largest) kept at most")
        loop.advanceTime(by: .seconds(60))
        #expect(slow.expired == 1)
    }

    @Test func aStalledRedisExpiresEveryCallInFlightOnceAndClosesStalledConnectionsOncePerFiring() {
        let loop = EmbeddedEventLoop()
        let firings = Counter()
        let deadlines = CallDeadlines(eventLoop: loop, now: { loop.now }, afterExpiring: { firings.value += 1 })
        var calls: [Call] = []
        for index in 0..<5_000 {
            let call = Call()
            // Ten calls a millisecond, none answered.
            call.add(to: deadlines, at: loop.now + .milliseconds(50 + Int64(index / 10)))
            calls.append(call)
        }
        loop.advanceTime(by: .milliseconds(50))
        #expect(calls.prefix(10).allSatisfy { $0.expired == 1 } && calls[10].expired == 0)
        #expect(firings.value == 1, "ten calls expired in one firing, stalled connections closed once")
        loop.advanceTime(by: .milliseconds(500))
        #expect(calls.allSatisfy { $0.expired == 1 })
        #expect(firings.value == 500 && deadlines.count == 0)
    }

    final class Counter {
        var value = 0
    }
}
