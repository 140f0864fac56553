import Foundation

/// One answer of the origin's invalidation feed, read as a node must: everything in it is checked
/// before any of it is applied. Events must follow the cursor one by one (`after + 1`, `after + 2`,
/// …) so none is skipped or applied twice; a head must be a sequence number the node can continue
/// from (0 up to 2^53, so `head + 1` never overflows and JSON carries it exactly).
public enum FeedAnswer: Equatable, Sendable {
    /// Events after the cursor (possibly none) and the origin's head.
    case events([InvalidationEvent], head: Int)
    /// The cursor left the origin's window: purge everything and continue from `head`.
    case expired(head: Int)

    public static let largestSequence = 1 << 53

    public static func parse(status: Int, body: [UInt8], after: Int) throws(EdgeError) -> FeedAnswer {
        guard (0...largestSequence).contains(after) else {
            throw EdgeError(.transferFailure, "the cursor \(after) is out of range")
        }
        let object = JSONValue.parse(body)?.objectValue
        func head() throws(EdgeError) -> Int {
            guard let head = object?["head"]?.integerValue, (0...largestSequence).contains(head) else {
                throw EdgeError(.transferFailure, "feed answer has no valid head")
            }
            return head
        }
        switch status {
        case 200:
            let head = try head()
            guard let list = object?["events"]?.arrayValue else {
                throw EdgeError(.transferFailure, "feed answer is not {head, events}")
            }
            var events: [InvalidationEvent] = []
            events.reserveCapacity(min(list.count, 1000))
            var expected = after + 1
            for item in list {
                let event = try InvalidationEvent(json: item)
                guard event.seq == expected, event.seq <= head else {
                    throw EdgeError(.transferFailure, "feed answer skips or repeats events after \(after)")
                }
                events.append(event)
                expected += 1
            }
            guard !events.isEmpty || head >= after else {
                throw EdgeError(.transferFailure, "feed answer's head \(head) is behind the cursor \(after)")
            }
            return .events(events, head: head)
        case 410:
            return .expired(head: try head())
        default:
            throw EdgeError(.transferFailure, "feed answered \(status)")
        }
    }
}
