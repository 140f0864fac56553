import NIOCore
import TenantEdgeCore
import TenantEdgeNative

/// What nodes of a region leave for each other in their shared Redis, for the dashboards: purge
/// acknowledgements in the tenant's own namespace (`te:<tenant>:acks`, so Redis ACLs of the
/// `schema` strategy allow them), and node beacons under the region's first tenant (`te:<tenant>:nodes`).
/// Every call is best-effort: a dashboard without them shows this node alone.
extension RedisTier {
    /// How long acknowledgements and beacons stay once nothing refreshes them.
    static let regionRecordSeconds = 3600

    /// The tenant's purge fence now (0 before its first purge).
    func purgeFence(tenant: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int?> {
        run([Array("GET".utf8), Array("te:\(tenant):fence".utf8)], on: eventLoop) { reply -> Int in
            switch reply {
            case .null: return 0
            case .string(let bytes):
                guard let fence = Int(String(decoding: bytes, as: UTF8.self)), fence >= 0 else {
                    throw EdgeError(.redisFailure, "purge fence is not a number")
                }
                return fence
            default: throw EdgeError(.redisFailure, "unexpected reply to GET")
            }
        }
    }

    /// Records that `node` applied `tenant`'s purges up to `acknowledgement.fence`. Only ever raises
    /// the node's fence: calls on different connections may arrive out of order.
    func acknowledge(tenant: String, node: String, _ acknowledgement: PurgeAcknowledgement, on eventLoop: any EventLoop)
    {
        let arguments = [
            Array("EVAL".utf8), Array(Self.acknowledgeScript.utf8), Array("1".utf8), Array("te:\(tenant):acks".utf8),
            Array(node.utf8), Array(acknowledgement.encoded.utf8), Array(String(acknowledgement.fence).utf8),
            Array(String(Self.regionRecordSeconds).utf8),
        ]
        _ = run(arguments, on: eventLoop) { _ in () }
    }

    /// `KEYS[1]` the hash; `ARGV` the node, its record, the record's fence, seconds to keep the hash.
    static let acknowledgeScript = """
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        local fence = current and tonumber(string.match(current, '^(%d+) '))
        if fence and fence >= tonumber(ARGV[3]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('EXPIRE', KEYS[1], ARGV[4])
        return 1
        """

    /// Every node's latest acknowledgement for `tenant`; malformed ones are left out.
    func acknowledgements(tenant: String, on eventLoop: any EventLoop)
        -> EventLoopFuture<[String: PurgeAcknowledgement]?>
    {
        run([Array("HGETALL".utf8), Array("te:\(tenant):acks".utf8)], on: eventLoop) { reply in
            Self.pairs(reply).reduce(into: [String: PurgeAcknowledgement]()) { acks, pair in
                if let ack = PurgeAcknowledgement(decoding: String(decoding: pair.value, as: UTF8.self)) {
                    acks[pair.key] = ack
                }
            }
        }
    }

    /// Writes this node's beacon under `anchor` (the region's first tenant).
    func publish(_ beacon: NodeBeacon, anchor: String, on eventLoop: any EventLoop) {
        guard let bytes = try? beacon.encoded() else { return }
        let key = Array("te:\(anchor):nodes".utf8)
        _ = run([Array("HSET".utf8), key, Array(beacon.id.utf8), bytes], on: eventLoop) { _ in () }
        _ = run([Array("EXPIRE".utf8), key, Array(String(Self.regionRecordSeconds).utf8)], on: eventLoop) { _ in () }
    }

    /// The region's beacons; those older than `regionRecordSeconds` are removed, bad ones left out.
    func beacons(anchor: String, now: Double, on eventLoop: any EventLoop) -> EventLoopFuture<[NodeBeacon]?> {
        let key = Array("te:\(anchor):nodes".utf8)
        return run([Array("HGETALL".utf8), key], on: eventLoop) { reply in
            Self.pairs(reply).compactMap { NodeBeacon(decoding: $0.value) }
        }.map { beacons in
            guard let beacons else { return nil }
            let old = beacons.filter { now - $0.at > Double(Self.regionRecordSeconds) }.map { Array($0.id.utf8) }
            if !old.isEmpty { _ = self.run([Array("HDEL".utf8), key] + old, on: eventLoop) { _ in () } }
            return beacons.filter { now - $0.at <= Double(Self.regionRecordSeconds) }
        }
    }

    /// A `HGETALL` reply as field and value pairs; anything else is none. At most 10,000 pairs.
    private static func pairs(_ reply: RedisConnection.Reply) -> [(key: String, value: [UInt8])] {
        guard case .array(let items) = reply else { return [] }
        var pairs: [(key: String, value: [UInt8])] = []
        var index = 0
        while index + 1 < items.count && pairs.count < 10_000 {
            if case .string(let field) = items[index], case .string(let value) = items[index + 1] {
                pairs.append((String(decoding: field, as: UTF8.self), value))
            }
            index += 2
        }
        return pairs
    }
}
