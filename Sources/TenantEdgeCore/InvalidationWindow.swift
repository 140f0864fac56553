/// One event of the origin's invalidation log: a purge with its sequence number and publish time.
public struct InvalidationEvent: Sendable, Equatable {
    public var seq: Int
    public var purge: PurgeRequest
    /// RFC 3339, when the origin made it durable.
    public var publishedAt: String

    public init(seq: Int, purge: PurgeRequest, publishedAt: String) {
        self.seq = seq
        self.purge = purge
        self.publishedAt = publishedAt
    }
}

/// The window of recent invalidations the origin keeps for feeds: the last `retention` events.
/// Pure logic; durability is the log file's job (`InvalidationLog`).
///
/// A cursor is the last `seq` a node applied. A read after a cursor answers the events that follow
/// it, or `expired` when some of them were already dropped from the window (the node must then purge
/// everything and resume from `head`). A cursor above `head` also answers `expired`: the origin
/// cannot vouch for what the node thinks it saw.
///
/// The window is bounded by bytes as well as by count (`byteBudget`, about 64 MiB by default):
/// publishers send events of up to 256 KiB, and the count alone would let them fill the origin's
/// memory. Events beyond either bound leave the window; a node behind them gets `expired`.
public struct InvalidationWindow: Sendable {
    public let retention: Int
    public let byteBudget: Int
    public private(set) var head: Int = 0
    private var events: [InvalidationEvent] = []
    private var sizes: [Int] = []
    private var start = 0  // index of the oldest retained event in `events`
    /// Approximate bytes of the retained events.
    public private(set) var retainedBytes = 0

    /// Default byte budget of the origin's window.
    public static let defaultByteBudget = 64 << 20

    public init(retention: Int, byteBudget: Int = defaultByteBudget) {
        self.retention = max(1, retention)
        self.byteBudget = max(1, byteBudget)
    }

    /// A window whose first event will be `head + 1` (a log file that was compacted).
    public init(retention: Int, startingAfter head: Int, byteBudget: Int = defaultByteBudget) {
        self.init(retention: retention, byteBudget: byteBudget)
        self.head = head
    }

    public enum Read: Equatable, Sendable {
        case events([InvalidationEvent], head: Int)
        case expired(head: Int)
    }

    /// Adds the next event (its `seq` must be `head + 1`) and drops the oldest beyond `retention`.
    /// `encodedBytes`: the event's size as JSON, when the caller has encoded it (the log has: escapes
    /// can make it six times its text), else an estimate.
    public mutating func append(_ event: InvalidationEvent, encodedBytes: Int? = nil) {
        precondition(event.seq == head + 1, "invalidation seq must follow the head")
        let size = encodedBytes ?? event.approximateBytes
        events.append(event)
        sizes.append(size)
        retainedBytes += size
        head = event.seq
        while events.count - start > retention || (retainedBytes > byteBudget && events.count - start > 1) {
            retainedBytes -= sizes[start]
            start += 1
        }
        if start > retention {  // amortized compaction
            events.removeFirst(start)
            sizes.removeFirst(start)
            start = 0
        }
    }

    /// The oldest `seq` still held (head + 1 when empty).
    public var oldest: Int { start < events.count ? events[start].seq : head + 1 }

    /// At most `limit` events and, past the first, at most `maxBytes` of them, so one answer stays
    /// well inside what a node downloads.
    public func read(after cursor: Int, limit: Int, maxBytes: Int = .max) -> Read {
        guard cursor <= head, cursor >= oldest - 1 else { return .expired(head: head) }
        let first = start + (cursor - oldest + 1)
        var end = min(events.count, first + max(1, limit))
        var bytes = 0
        for index in first..<max(first, end) {
            bytes += sizes[index]
            if bytes > maxBytes && index > first {
                end = index
                break
            }
        }
        return .events(first < end ? Array(events[first..<end]) : [], head: head)
    }
}

extension InvalidationEvent {
    /// About the bytes this event takes in a feed answer: its strings plus JSON framing.
    public var approximateBytes: Int {
        let strings = purge.keys + purge.tags + purge.prefixes
        return 96 + purge.tenant.utf8.count + publishedAt.utf8.count + strings.reduce(0) { $0 + $1.utf8.count + 3 }
    }

    /// The event as in the feed and in the origin's log file.
    public var json: JSONValue {
        .object([
            "seq": .integer(seq), "tenant": .string(purge.tenant), "keys": .array(purge.keys.map { .string($0) }),
            "tags": .array(purge.tags.map { .string($0) }), "prefixes": .array(purge.prefixes.map { .string($0) }),
            "all": .bool(purge.all), "published_at": .string(publishedAt),
        ])
    }

    public init(json: JSONValue) throws(EdgeError) {
        guard let fields = json.objectValue else {
            throw EdgeError(.badRequest, "an invalidation event must be a JSON object")
        }
        guard let seq = fields["seq"]?.integerValue, (1...(1 << 53)).contains(seq) else {
            throw EdgeError(.badRequest, "an invalidation event needs a 'seq' from 1 to 2^53")
        }
        let purge = try PurgeRequest(fields: fields, extraFields: ["seq", "published_at"])
        self.init(seq: seq, purge: purge, publishedAt: fields["published_at"]?.stringValue ?? "")
    }
}
