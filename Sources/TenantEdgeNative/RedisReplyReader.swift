internal import CHiredis
import TenantEdgeCore

/// hiredis's reply parser on its own (`redisReader`), for a Redis connection whose bytes an event
/// loop moves: the shared tier's connections live on the node's event loops, and only the parsing
/// of RESP is hiredis's. Owns its reader and frees it in `deinit`; used by one thread at a time.
///
/// A reply is parsed only once all of it has arrived, so hiredis holds an unfinished one in its
/// buffer: `maxBufferedBytes` bounds that buffer, and a Redis (or anything posing as one) that
/// sends more than any answer of ours can be gets an error instead of the node's memory.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let maxBufferedBytes: Int

    public init(maxBufferedBytes: Int) throws(EdgeError) {
        guard let reader = redisReaderCreate() else {
            throw EdgeError(.redisFailure, "cannot allocate a Redis reply reader")
        }
        self.reader = reader
        self.maxBufferedBytes = maxBufferedBytes
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
            throw EdgeError(.redisFailure, "Redis sent a malformed reply")
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
    }
}
