import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// The L2 read without a script. An entry's key names the tenant's generation, which only Redis
/// knows for sure, so the `get` script reads the generation and then the entry. But this node
/// already holds the highest generation it has seen (`generationFloor`), and one `MGET` of the
/// entry at that generation, the fence and the generation is atomic in Redis: when the generation
/// it returns is the one guessed, the answer is exactly what the script would have given. Only
/// when the generation moved (a purge of everything, or a roll-back for `admitted` to refuse)
/// does the read go through the script. Redis runs a plain `MGET` for a fraction of what
/// `EVALSHA` costs it, and on a machine Redis shares with the node that is the node's time too.
///
/// A Redis whose ACL was set up before `MGET` was granted (`edgectl redis acl` prints the current
/// list) answers `NOPERM`: the node then reads through the script, as before, and says so once.
extension RedisTier {
    enum PlainReadOutcome: Sendable {
        case read(Read)
        /// Redis did not answer, or answered nonsense for this tenant: a miss.
        case unavailable
        /// The generation moved or `MGET` is not allowed: the script reads it.
        case askScript
    }

    /// Nil when there is no generation to guess yet, or `MGET` was refused before.
    func plainRead(tenant: String, digest: KeyDigest, on eventLoop: any EventLoop)
        -> EventLoopFuture<PlainReadOutcome>?
    {
        guard !plainReadsRefused.load(ordering: .relaxed),
            let guessed = generationFloor.withLock({ $0[tenant] })
        else { return nil }
        let arguments = [
            Self.mget, Array("te:\(tenant):g\(guessed):\(digest.base64URL)".utf8), Array("te:\(tenant):fence".utf8),
            Array("te:\(tenant):gen".utf8),
        ]
        return run(arguments, on: eventLoop) { reply -> PlainReadOutcome in
            switch reply {
            case .array(let items) where items.count == 3:
                // Missing fence and generation read as "0", as the scripts read them.
                guard let fence = Self.textOrZero(items[1]), let text = Self.textOrZero(items[2]),
                    let generation = Self.generation(text)
                else { return .unavailable }
                guard generation == guessed else { return .askScript }
                let token = Token(fence: fence, generation: generation)
                switch items[0] {
                case .string(let value): return .read(Read(value: value, token: token))
                case .null: return .read(Read(value: nil, token: token))
                default: return .unavailable
                }
            case .error(let message) where message.hasPrefix("NOPERM"):
                self.refusePlainReads(message)
                return .askScript
            case .error(let message): throw EdgeError(.redisFailure, "MGET: \(message)")
            default: throw EdgeError(.redisFailure, "MGET: unexpected reply")
            }
        }.map { $0 ?? .unavailable }
    }

    private static let mget = Array("MGET".utf8)

    /// A string item's bytes, `"0"` for a missing key, nil for anything else.
    static func textOrZero(_ item: RedisConnection.Reply) -> [UInt8]? {
        switch item {
        case .string(let bytes): return bytes
        case .null: return Array("0".utf8)
        default: return nil
        }
    }

    private func refusePlainReads(_ message: String) {
        guard !plainReadsRefused.exchange(true, ordering: .relaxed) else { return }
        logger.warning(
            "Redis refused MGET (an ACL from before it): L2 reads use the get script; re-apply `edgectl redis acl`",
            metadata: ["reply": "\(message.prefix(80))"])
    }
}
