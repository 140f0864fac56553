import TenantEdgeCore
import TenantEdgeNative

/// The Lua scripts of the Redis tier. Each runs atomically in Redis and resolves the tenant's
/// generation in the same round trip.
///
/// Every script gets `KEYS[1] = te:<t>:gen` (the generation), `KEYS[2] = te:<t>:fence` (bumped by
/// every purge), `KEYS[3] = te:<t>:keys` (every live key of the tenant, scored by its expiry, so an
/// erasure deletes them all without a scan) and `ARGV[1] = te:<t>:g` (the key prefix before the
/// generation). Keys are
/// `te:<t>:g<N>:<digest>`, index sets `…:idx:<digest>`, and the byte ledger `…:bytes`, a hash of
/// bytes stored per expiry minute, so a tenant's live L2 bytes are known without a scan.
///
/// The fence makes writes safe against purges: a miss reads the fence with the value, and the
/// write that follows is refused when any purge ran in between. That covers a fetch racing a purge
/// and also a `SET` that timed out on our side but runs in Redis later, after a purge.
enum SharedTierScripts {
    /// Subtracts a key's bytes from the ledger bucket of its expiry minute (before a delete or
    /// overwrite), in the generation's ledger and in the tenant's quota ledger `te:<t>:quota` (bytes
    /// per expiry minute and their `total`, across generations: a dropped generation's entries
    /// still take memory until they expire, so a purge of everything does not reset the quota).
    private static let prelude = """
        local g = redis.call('GET', KEYS[1]) or '0'
        local base = ARGV[1] .. g .. ':'
        local ledger = base .. 'bytes'
        local now = tonumber(redis.call('TIME')[1])
        local quotaLedger = 'te:' .. string.sub(KEYS[1], 4, -5) .. ':quota'
        local function forget(key)
          local left = redis.call('TTL', key)
          if left > 0 then
            local bucket = math.floor((now + left) / 60)
            local size = redis.call('STRLEN', key)
            redis.call('HINCRBY', ledger, bucket, -size)
            if redis.call('HEXISTS', quotaLedger, bucket) == 1 then
              redis.call('HINCRBY', quotaLedger, bucket, -size)
              redis.call('HINCRBY', quotaLedger, 'total', -size)
            end
          end
        end

        """

    /// `ARGV[2]` digest → `{value or nil, fence, generation}`.
    static let get = """
        local g = redis.call('GET', KEYS[1]) or '0'
        return {redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2]), redis.call('GET', KEYS[2]) or '0', g}
        """

    /// `ARGV[2]` digest, `ARGV[3]` value, `ARGV[4]` TTL, `ARGV[5]` the fence read before the fetch,
    /// `ARGV[6]` the key version it is sealed under (listed in `te:<t>:v<version>` for retirement
    /// sweeps), `ARGV[7]` the tenant's L2 quota in bytes (0: none), `ARGV[8…]` index digests.
    /// Returns 1 when stored, 0 when a purge ran since the fence was read, 2 when the tenant's
    /// live bytes would pass its quota (one tenant never fills the region's Redis). Index sets live
    /// at least as long as their newest member. Quota buckets of minutes past are dropped here,
    /// each once (`te:<t>:quota:minutes` lists them), so the check costs O(1) amortized.
    static let set = """
        if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[5] then return 0 end
        \(prelude)local key = base .. ARGV[2]
        local ttl = tonumber(ARGV[4])
        local quota = tonumber(ARGV[7])
        local minutes = quotaLedger .. ':minutes'
        local minute = math.floor(now / 60)
        local expired = redis.call('ZRANGEBYSCORE', minutes, '-inf', minute - 1)
        for _, m in ipairs(expired) do
          redis.call('HINCRBY', quotaLedger, 'total', -tonumber(redis.call('HGET', quotaLedger, m) or '0'))
          redis.call('HDEL', quotaLedger, m)
        end
        if #expired > 0 then redis.call('ZREMRANGEBYSCORE', minutes, '-inf', minute - 1) end
        local total = tonumber(redis.call('HGET', quotaLedger, 'total') or '0')
        if quota > 0 and total - redis.call('STRLEN', key) + #ARGV[3] > quota then return 2 end
        forget(key)
        redis.call('SET', key, ARGV[3], 'EX', ttl)
        local bucket = math.floor((now + ttl) / 60)
        redis.call('HINCRBY', ledger, bucket, #ARGV[3])
        if redis.call('TTL', ledger) < ttl + 60 then redis.call('EXPIRE', ledger, ttl + 60) end
        -- Index members this write adds (key list, version list, tag and prefix sets) are the
        -- tenant's memory too: about 96 bytes each, charged only when new, so rewriting a key costs
        -- its value alone and unique Surrogate-Keys cannot grow Redis past the quota.
        local added = 0
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
        added = added + redis.call('ZADD', KEYS[3], 'GT', now + ttl, key)
        redis.call('ZADD', KEYS[3], 'GT', now + ttl + 60, ledger)
        local byVersion = 'te:' .. string.sub(KEYS[1], 4, -5) .. ':v' .. ARGV[6]
        redis.call('ZREMRANGEBYSCORE', byVersion, '-inf', now)
        added = added + redis.call('ZADD', byVersion, 'GT', now + ttl, key)
        redis.call('ZADD', KEYS[3], 'GT', now + ttl, byVersion)
        for i = 8, #ARGV do
          local idx = base .. 'idx:' .. ARGV[i]
          added = added + redis.call('SADD', idx, ARGV[2])
          if redis.call('TTL', idx) < ttl then redis.call('EXPIRE', idx, ttl) end
          added = added + redis.call('ZADD', KEYS[3], 'GT', now + ttl, idx)
        end
        local charge = #ARGV[3] + 96 * added
        redis.call('HINCRBY', quotaLedger, bucket, charge)
        redis.call('HINCRBY', quotaLedger, 'total', charge)
        redis.call('ZADD', minutes, bucket, bucket)
        for _, k in ipairs({quotaLedger, minutes}) do
          if redis.call('TTL', k) < ttl + 60 then redis.call('EXPIRE', k, ttl + 60) end
          redis.call('ZADD', KEYS[3], 'GT', now + ttl + 60, k)
        end
        return 1
        """

    /// Bumps a counter (`fence` or generation) like `INCR`, except that a value `INCR` refuses (not an
    /// integer, or at the 64-bit limit) starts again at 1 instead of failing the script: a damaged
    /// key must not keep every purge and erasure of the tenant from running. A fence or generation
    /// seen going back is a case the nodes handle already (a resync drops L1; a lower generation is
    /// raised above the highest seen).
    private static let bump = """
        local function bump(key)
          local n = redis.pcall('INCR', key)
          if type(n) ~= 'number' then
            redis.call('SET', key, 1)
            n = 1
          end
          return n
        end

        """

    /// Purge scripts take `ARGV[2]` the tenant's purge channel, `ARGV[3]` this node's id and
    /// `ARGV[4…]` digests, and publish a `PurgeNotice` in the same atomic step.
    private static func publish(_ kind: String) -> String {
        "redis.call('PUBLISH', ARGV[2], fence .. ' ' .. ARGV[3] .. ' \(kind)'"
            + " .. (#ARGV > 3 and (' ' .. table.concat(ARGV, ' ', 4)) or ''))\n"
    }

    /// Deletes the entries of these digests; returns how many existed and the fence this purge made
    /// (a purge's id: a fence read afterwards could already count a sibling's purge or an erasure).
    static let delete = """
        \(bump)local fence = bump(KEYS[2])
        redis.call('PERSIST', KEYS[2])  -- a fence moved by an erasure expires; one in use never may
        \(publish("k"))\(prelude)local n = 0
        for i = 4, #ARGV do
          local key = base .. ARGV[i]
          forget(key)
          n = n + redis.call('DEL', key)
        end
        return {n, fence}
        """

    /// Deletes every entry listed in the index sets of these digests, and the sets; returns how many
    /// and the fence this purge made.
    static let purgeIndexes = """
        \(bump)local fence = bump(KEYS[2])
        redis.call('PERSIST', KEYS[2])  -- a fence moved by an erasure expires; one in use never may
        \(publish("i"))\(prelude)local n = 0
        for i = 4, #ARGV do
          local idx = base .. 'idx:' .. ARGV[i]
          for _, member in ipairs(redis.call('SMEMBERS', idx)) do
            forget(base .. member)
            n = n + redis.call('DEL', base .. member)
          end
          redis.call('DEL', idx)
        end
        return {n, fence}
        """

    /// Makes every entry of the tenant unreachable at once (O(1)); they expire on their own. Returns
    /// the new generation and the fence this purge made.
    static let dropGeneration = """
        \(bump)local fence = bump(KEYS[2])
        redis.call('PERSIST', KEYS[2])  -- a fence moved by an erasure expires; one in use never may
        \(publish("a"))return {bump(KEYS[1]), fence}
        """

    /// A generation seen lower than before (Redis restarted empty, a replica that was behind took
    /// over, or someone set it back): moves it above `ARGV[4]`, the highest a node has seen, so the
    /// entries of the generations in between stay unreachable and the tenant's L2 works again. It
    /// is a purge of everything, published like one (`ARGV[2]` channel, `ARGV[3]` node id).
    static let raiseGeneration = """
        \(bump)local fence = bump(KEYS[2])
        redis.call('PERSIST', KEYS[2])
        redis.call('PUBLISH', ARGV[2], fence .. ' ' .. ARGV[3] .. ' a')
        local g = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
        if g <= tonumber(ARGV[4]) then redis.call('SET', KEYS[1], tonumber(ARGV[4]) + 1) end
        return g
        """

    /// Retirement sweep, in batches of 1,000: deletes the entries sealed under key version
    /// `ARGV[2]` (listed in `te:<t>:v<version>`); returns how many are left.
    static let sweepVersion = """
        \(prelude)local byVersion = 'te:' .. string.sub(KEYS[1], 4, -5) .. ':v' .. ARGV[2]
        local batch = redis.call('ZRANGE', byVersion, 0, 999)
        for _, k in ipairs(batch) do
          forget(k)
          redis.call('DEL', k)
        end
        if #batch > 0 then redis.call('ZREM', byVersion, unpack(batch)) end
        local left = redis.call('ZCARD', byVersion)
        if left == 0 then redis.call('DEL', byVersion) end
        return left
        """

    /// Erasure, in batches of 1,000: deletes the tenant's live keys (every generation) and, once none
    /// are left, its generation, key list and purge acknowledgements. `ARGV[2]` = `back`: the tenant
    /// is served again (it returned while this erasure retried), so its generation and acknowledgements
    /// belong to it now and stay (deleted, its siblings read the generation going back as a roll-back,
    /// and its purges lost the acknowledgements siblings had already written). `ARGV[2]` = `gone`
    /// comes with `ARGV[3]`, the generation the erasure's own drop made: when the generation moved
    /// since, someone dropped it again (the tenant came back while this call was on its way, or a
    /// node still serving it purged everything), so nothing is touched and `-1` asks the caller to
    /// decide again. Decided when the call left, `gone` could otherwise run in Redis after the tenant
    /// returned (a call that timed out on our side stays queued on its connection).
    /// Returns how many keys are left to delete. The fence is moved, never deleted: a deleted fence
    /// reads as `0` again, and a fetch that read `0` before the erasure would pass the write check and
    /// bring the tenant's data back. It expires after three
    /// hours, longer than any fetch can take (`limits.upstream_*_timeout_ms` are at most an hour each).
    static let erase = """
        \(bump)if ARGV[2] ~= 'back' and (redis.call('GET', KEYS[1]) or '0') ~= ARGV[3] then return -1 end
        local batch = redis.call('ZRANGE', KEYS[3], 0, 999)
        for _, k in ipairs(batch) do redis.call('DEL', k) end
        if #batch > 0 then redis.call('ZREM', KEYS[3], unpack(batch)) end
        local left = redis.call('ZCARD', KEYS[3])
        if left == 0 then
          local prefix = string.sub(KEYS[1], 1, -4)  -- 'te:<tenant>:' of 'te:<tenant>:gen'
          if ARGV[2] == 'back' then
            redis.call('DEL', KEYS[3])
          else
            redis.call('DEL', KEYS[1], KEYS[3], prefix .. 'acks')
          end
          bump(KEYS[2])
          redis.call('EXPIRE', KEYS[2], 10800)
        end
        return left
        """

    /// The tenant's live bytes: ledger buckets of minutes not yet past (expired buckets are removed).
    static let liveBytes = """
        local g = redis.call('GET', KEYS[1]) or '0'
        local ledger = ARGV[1] .. g .. ':bytes'
        local minute = math.floor(tonumber(redis.call('TIME')[1]) / 60)
        local flat = redis.call('HGETALL', ledger)
        local total = 0
        for i = 1, #flat, 2 do
          if tonumber(flat[i]) < minute then
            redis.call('HDEL', ledger, flat[i])
          else
            total = total + tonumber(flat[i + 1])
          end
        end
        return total
        """

    /// Script SHA-1s, computed once: calls send `EVALSHA` (40 bytes instead of the script, and no
    /// hashing of the body in Redis), falling back to `EVAL` when Redis does not know the script yet.
    static let shas: [String: [UInt8]] = Dictionary(
        uniqueKeysWithValues: [
            get, set, delete, purgeIndexes, dropGeneration, raiseGeneration, liveBytes, erase, sweepVersion,
        ].map { ($0, Array(OpenSSL.sha1Hex($0).utf8)) })

    /// A purge script's call: the tenant's channel and the node id before the digests.
    static func purgeCall(_ script: String, tenant: String, database: Int, node: String, digests: [KeyDigest])
        -> [[UInt8]]
    {
        call(
            script, tenant: tenant,
            [Array(PurgeNotice.channel(tenant: tenant, database: database).utf8), Array(node.utf8)]
                + digests.map { Array($0.base64URL.utf8) })
    }

    /// `EVAL script 3 te:<t>:gen te:<t>:fence te:<t>:keys te:<t>:g` followed by `extra`.
    static func call(_ script: String, tenant: String, _ extra: [[UInt8]] = []) -> [[UInt8]] {
        [
            Array("EVAL".utf8), Array(script.utf8), Array("3".utf8), RedisTier.tenantKey(tenant, "gen"),
            RedisTier.tenantKey(tenant, "fence"), RedisTier.tenantKey(tenant, "keys"), RedisTier.tenantKey(tenant, "g"),
        ] + extra
    }
}
