internal import CHiredis
import TenantEdgeCore

/// hiredis's reply parser on its own (`redisReader`), for a Redis connection whose bytes an event
/// loop moves: the shared tier's connections live on the node's event loops, and only the parsing
/// of RESP is hiredis's. Owns its reader and frees it in `deinit`; used by one thread at a time.
///
/// What a hostile Redis (or anything posing as one) can make it hold is bounded: `feed` refuses
/// bytes past `maxBufferedBytes` unparsed, and an array header announcing more than
/// `maxArrayElements` elements is an error instead of a `calloc` of its size (hiredis 0.14 has no
/// such limit). The caller bounds what a reply holds once parsed (`RedisCommandHandler` counts the
/// bytes fed since the last complete reply), since hiredis parses an array's elements as they come.
public final class RedisReplyReader {
    /// More elements than any reply the node asks for has (`MGET` of three keys, `ROLE`, a script's
    /// answer): an array header above it fails the reader.
    public static let maxArrayElements = 1024

    private let reader: UnsafeMutablePointer<redisReader>
    private let maxBufferedBytes: Int
    /// The bulk strings of the reply being parsed, in the order hiredis made them: copied once, from
    /// hiredis's read buffer into the arrays the reply hands out. hiredis's own constructor copied
    /// each into a `malloc`ed string that the conversion copied again: two copies of every L2 value
    /// (16 KiB each for a 16 KiB body), now one.
    fileprivate var bulkStrings: [[UInt8]] = []

    public init(maxBufferedBytes: Int) throws(EdgeError) {
        guard let functions = boundedReplyFunctions, let reader = redisReaderCreateWithFunctions(functions) else {
            throw EdgeError(.redisFailure, "cannot allocate a Redis reply reader")
        }
        self.reader = reader
        self.maxBufferedBytes = maxBufferedBytes
        // The constructors find this reader through each task's `privdata` (only while this reader
        // parses, inside `next`, so it is alive).
        reader.pointee.privdata = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { redisReaderFree(reader) }

    /// Bytes not yet parsed into a reply.
    public var bufferedBytes: Int { max(0, reader.pointee.len - reader.pointee.pos) }

    /// Adds bytes read from the connection.
    /// - Throws: `.redisFailure` when the unparsed bytes would pass `maxBufferedBytes`, or hiredis
    ///   cannot take them; the connection must then be closed, since its stream is out of step.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws(EdgeError) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        guard bytes.count <= maxBufferedBytes &- bufferedBytes else {
            throw EdgeError(.redisFailure, "Redis sent a reply larger than \(maxBufferedBytes) bytes")
        }
        guard redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK else {
            throw EdgeError(.redisFailure, "the Redis reply reader refused input")
        }
    }

    /// The next complete reply, copied out of hiredis's memory, or nil until more bytes arrive.
    /// - Throws: `.redisFailure` for bytes that are not RESP (the connection must be closed).
    public func next() throws(EdgeError) -> RedisConnection.Reply? {
        var raw: UnsafeMutableRawPointer? = nil
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            bulkStrings.removeAll()
            throw EdgeError(.redisFailure, "Redis sent a malformed reply")
        }
        guard let raw else { return nil }  // incomplete: its strings so far stay for the rest
        defer {
            freeReplyObject(raw)
            // A hostile Redis's reply of a million empty strings must not stay pinned in capacity.
            bulkStrings.removeAll(keepingCapacity: bulkStrings.capacity <= 64)
        }
        var taken = 0
        let reply = convert(raw.assumingMemoryBound(to: redisReply.self), taken: &taken)
        // Every string made taken, none missing: hiredis makes them in the order this walks, so
        // anything else is a reader out of step, never a value to hand to a caller.
        guard let reply, taken == bulkStrings.count else {
            throw EdgeError(.redisFailure, "the Redis reply reader lost track of a reply's strings")
        }
        return reply
    }

    /// `RedisConnection.convert`, with bulk strings taken from `bulkStrings` in the order hiredis
    /// made them: depth first, an array's elements in order, as this walks them. Nil when a string
    /// the reply names is not in the list.
    private func convert(_ reply: UnsafeMutablePointer<redisReply>, taken: inout Int) -> RedisConnection.Reply? {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            guard taken < bulkStrings.count else { return nil }
            defer { taken += 1 }
            return .string(bulkStrings[taken])
        case REDIS_REPLY_ARRAY:
            let count = max(0, value.elements)
            var items: [RedisConnection.Reply] = []
            items.reserveCapacity(count)
            for index in 0..<count {
                guard let element = value.element[index] else { continue }
                guard let item = convert(element, taken: &taken) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            return RedisConnection.convert(reply)
        }
    }
}

/// hiredis's own reply constructors (static in hiredis, reached through a default reader's table).
nonisolated(unsafe) private let defaultReplyFunctions: redisReplyObjectFunctions? = {
    guard let reader = redisReaderCreate() else { return nil }
    defer { redisReaderFree(reader) }
    return reader.pointee.fn.pointee
}()

/// The same constructors, but an array of more than `maxArrayElements` is refused (NULL: hiredis
/// then reports out of memory, which fails the reader) before hiredis allocates room for it.
nonisolated(unsafe) private let boundedReplyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions>? = {
    guard var functions = defaultReplyFunctions else { return nil }
    functions.createString = { task, text, length in
        guard let task, let create = defaultReplyFunctions?.createString else { return nil }
        // Status and error lines are short: hiredis's own object. A bulk string is copied once into
        // the reader's list; hiredis gets an empty one, linked into its parent as its constructor does.
        guard task.pointee.type == REDIS_REPLY_STRING, let privdata = task.pointee.privdata else {
            return create(task, text, length)
        }
        let reader = Unmanaged<RedisReplyReader>.fromOpaque(privdata).takeUnretainedValue()
        let bytes = text.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
        reader.bulkStrings.append(bytes)
        var empty: CChar = 0
        return create(task, &empty, 0)
    }
    functions.createArray = { task, elements in
        guard elements >= 0, Int(elements) <= RedisReplyReader.maxArrayElements,
            let create = defaultReplyFunctions?.createArray
        else { return nil }
        return create(task, elements)
    }
    let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    table.initialize(to: functions)
    return table
}()
