import NIOCore
import TenantEdgeCore
import TenantEdgeNative

/// What nodes of a region leave for each other in their shared Redis, for the dashboards: purge
/// acknowledgements in the tenant's own namespace (`te:<tenant>:acks`, so Redis ACLs of the
/// `schema` strategy allow them), and node beacons under a key no tenant owns (`te:_region:nodes`;
/// tenant ids cannot start with `_`), on the region's shared endpoint.
///
/// Every call is best-effort, and every hash is kept small whatever is in it: writes drop records
/// older than an hour once a hash has more than 32 fields, and reads take at most 256 fields (a
/// reply over 1,024 elements would close the connection every tenant's L2 calls share).
extension RedisTier {
    /// How long acknowledgements and beacons stay once nothing refreshes them.
    static let regionRecordSeconds = 3600
    /// Most fields a read takes from one hash.
    static let regionRecordsRead = 256
    static let beaconKey = "te:_region:nodes"

    /// Records that `node` applied `tenant`'s purges up to `acknowledgement.fence`. Only ever raises
    /// the node's fence: calls on different connections may arrive out of order. True once Redis
    /// holds it (or a higher one); `PurgeAcknowledger` writes it again until then.
    func acknowledge(tenant: String, node: String, _ acknowledgement: PurgeAcknowledgement, on eventLoop: any EventLoop)
        -> EventLoopFuture<Bool>
    {
        write(
            Self.acknowledgeScript, key: "te:\(tenant):acks", field: node, value: Array(acknowledgement.encoded.utf8),
            rank: String(acknowledgement.fence), at: acknowledgement.at, on: eventLoop)
    }

    /// Every node's latest acknowledgement for `tenant` (at most `regionRecordsRead`); malformed
    /// ones are left out.
    func acknowledgements(tenant: String, on eventLoop: any EventLoop)
        -> EventLoopFuture<[String: PurgeAcknowledgement]?>
    {
        read("te:\(tenant):acks", on: eventLoop).map { pairs in
            pairs?.reduce(into: [String: PurgeAcknowledgement]()) { acks, pair in
                if let ack = PurgeAcknowledgement(decoding: String(decoding: pair.value, as: UTF8.self)) {
                    acks[pair.key] = ack
                }
            }
        }
    }

    /// Writes this node's beacon.
    func publish(_ beacon: NodeBeacon, on eventLoop: any EventLoop) {
        guard let bytes = try? beacon.encoded() else { return }
        _ = write(
            Self.beaconScript, key: Self.beaconKey, field: beacon.id, value: bytes, rank: "", at: beacon.at,
            on: eventLoop)
    }

    /// The region's live beacons: a beacon counts only under its own node's field, written within
    /// `regionRecordSeconds` and not from the future; the rest is left out.
    func beacons(now: Double, on eventLoop: any EventLoop) -> EventLoopFuture<[NodeBeacon]?> {
        read(Self.beaconKey, on: eventLoop).map { pairs in
            pairs?.compactMap { pair in
                guard let beacon = NodeBeacon(decoding: pair.value), beacon.id == pair.key,
                    now - beacon.at <= Double(Self.regionRecordSeconds), beacon.at <= now + 60
                else { return nil }
                return beacon
            }
        }
    }

    /// `KEYS[1]` the hash; `ARGV`: field, value, rank (a fence the stored one must be below, or ''),
    /// now, seconds kept. Past 32 fields, records whose time (`at` of a beacon, the second word of
    /// an acknowledgement) is older than the seconds kept are dropped first.
    private static let prune = """
        if redis.call('HLEN', KEYS[1]) > 32 then
          local all = redis.call('HGETALL', KEYS[1])
          for i = 1, #all, 2 do
            local at = string.match(all[i + 1], '"at":([%d%.eE+-]+)') or string.match(all[i + 1], '^%d+ ([%d%.]+)')
            at = tonumber(at)
            if not at or at < tonumber(ARGV[4]) - tonumber(ARGV[5]) then redis.call('HDEL', KEYS[1], all[i]) end
          end
        end
        """

    static let acknowledgeScript =
        prune + "\n" + """
            local current = redis.call('HGET', KEYS[1], ARGV[1])
            local fence = current and tonumber(string.match(current, '^(%d+) '))
            if fence and fence >= tonumber(ARGV[3]) then return 0 end
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
            redis.call('EXPIRE', KEYS[1], ARGV[5])
            return 1
            """

    static let beaconScript =
        prune + "\n" + """
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
            redis.call('EXPIRE', KEYS[1], ARGV[5])
            return 1
            """

    /// At most `regionRecordsRead` fields of a hash, in one reply within the reader's bounds.
    static let readScript = """
        local all = redis.call('HGETALL', KEYS[1])
        local n = math.min(#all, 2 * tonumber(ARGV[1]))
        local out = {}
        for i = 1, n do out[i] = all[i] end
        return out
        """

    /// True when the script ran (an error reply, such as a key of another type, is a failure).
    private func write(
        _ script: String, key: String, field: String, value: [UInt8], rank: String, at: Double,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Bool> {
        let arguments = [
            Array("EVAL".utf8), Array(script.utf8), Array("1".utf8), Array(key.utf8), Array(field.utf8), value,
            Array(rank.utf8), Array(String(at).utf8), Array(String(Self.regionRecordSeconds).utf8),
        ]
        return run(arguments, on: eventLoop) { reply -> Bool in
            guard case .integer = reply else { throw EdgeError(.redisFailure, "a region record was not written") }
            return true
        }.map { $0 ?? false }
    }

    private func read(_ key: String, on eventLoop: any EventLoop) -> EventLoopFuture<[(key: String, value: [UInt8])]?> {
        let arguments = [
            Array("EVAL".utf8), Array(Self.readScript.utf8), Array("1".utf8), Array(key.utf8),
            Array(String(Self.regionRecordsRead).utf8),
        ]
        return run(arguments, on: eventLoop) { reply in Self.pairs(reply) }
    }

    /// A flat field/value reply as pairs; anything else is none.
    private static func pairs(_ reply: RedisConnection.Reply) -> [(key: String, value: [UInt8])] {
        guard case .array(let items) = reply else { return [] }
        var pairs: [(key: String, value: [UInt8])] = []
        var index = 0
        while index + 1 < items.count {
            if case .string(let field) = items[index], case .string(let value) = items[index + 1] {
                pairs.append((String(decoding: field, as: UTF8.self), value))
            }
            index += 2
        }
        return pairs
    }
}
