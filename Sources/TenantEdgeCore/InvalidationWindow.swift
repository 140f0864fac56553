/// One event of the origin's invalidation log (interface section 5).
public struct InvalidationEvent: Sendable, Equatable {
    public var seq: Int
    public var purge: PurgeRequest
    /// RFC 3339, when the origin made it durable.
    public var publishedAt: String

    public init(seq: Int, purge: PurgeRequest, publishedAt: String) {
        self.seq = seq; self.purge = purge; self.publishedAt = publishedAt
    }
}

/// The window of recent invalidations the origin keeps for feeds: the last `retention` events.
/// Pure logic; durability is the log file's job (`InvalidationLog`).
///
/// A cursor is the last `seq` a node applied. A read after a cursor answers the events that follow
/// it, or `expired` when some of them were already dropped from the window (the node must then purge
/// everything and resume from `head`). A cursor above `head` also answers `expired`: the origin
/// cannot vouch for what the node thinks it saw.
public struct InvalidationWindow: Sendable {
    public let retention: Int
    public private(set) var head: Int = 0
    private var events: [InvalidationEvent] = []
    private var start = 0  // index of the oldest retained event in `events`

    public init(retention: Int) { self.retention = max(1, retention) }

    /// A window whose first event will be `head + 1` (a log file that was compacted).
    public init(retention: Int, startingAfter head: Int) {
        self.init(retention: retention)
        self.head = head
    }

    public enum Read: Equatable, Sendable {
        case events([InvalidationEvent], head: Int)
        case expired(head: Int)
    }

    /// Adds the next event (its `seq` must be `head + 1`) and drops the oldest beyond `retention`.
    public mutating func append(_ event: InvalidationEvent) {
        precondition(event.seq == head + 1, "invalidation seq must follow the head")
        events.append(event)
        head = event.seq
        if events.count - start > retention { start += 1 }
        if start > retention { events.removeFirst(start); start = 0 }  // amortized compaction
    }

    /// The oldest `seq` still held (head + 1 when empty).
    public var oldest: Int { start < events.count ? events[start].seq : head + 1 }

    public func read(after cursor: Int, limit: Int) -> Read {
        guard cursor <= head, cursor >= oldest - 1 else { return .expired(head: head) }
        let first = start + (cursor - oldest + 1)
        let end = min(events.count, first + max(1, limit))
        return .events(first < end ? Array(events[first..<end]) : [], head: head)
    }
}

extension InvalidationEvent {
    /// The event as in the feed and in the origin's log file.
    public var jsonObject: [String: Any] {
        ["seq": seq, "tenant": purge.tenant, "keys": purge.keys, "tags": purge.tags, "prefixes": purge.prefixes,
         "all": purge.all, "published_at": publishedAt]
    }

    public init(jsonObject: Any) throws(EdgeError) {
        guard let fields = jsonObject as? [String: Any] else { throw EdgeError(.badRequest, "an invalidation event must be a JSON object") }
        guard let seq = fields["seq"] as? Int, seq > 0 else { throw EdgeError(.badRequest, "an invalidation event needs a positive 'seq'") }
        let purge = try PurgeRequest(fields: fields, extraFields: ["seq", "published_at"])
        self.init(seq: seq, purge: purge, publishedAt: fields["published_at"] as? String ?? "")
    }
}
