/// The Redis ACL users of the `schema` strategy: one user per tenant, `te-<tenant>`, that can touch
/// only `te:<tenant>:*` (keys and pub/sub channels) and only the commands the node uses, so Redis
/// itself refuses a tenant's connection any other tenant's keys (`NOPERM`). The password is derived from the node's key
/// material (see `StandaloneKeyring.redisACLPassword`), so nothing extra is stored.
public enum RedisACL {
    public static func user(for tenant: String) -> String { "te-\(tenant)" }

    /// Arguments of `ACL SETUSER` for a tenant (the password in clear: for `edgectl redis acl` and tests).
    public static func setUserArguments(tenant: String, password: String) -> [String] {
        [
            "ACL", "SETUSER", user(for: tenant), "reset", "on", ">\(password)", "resetkeys", "~te:\(tenant):*",
            "resetchannels", "&te:\(tenant):*", "-@all",
            "+get", "+mget", "+set", "+del", "+exists", "+incr", "+ttl", "+expire", "+eval", "+evalsha", "+ping",
            "+role",
            "+sadd",
            "+srem", "+smembers", "+unlink",
            "+strlen", "+time", "+hincrby", "+hgetall", "+hdel", "+publish", "+subscribe",
            "+zadd", "+zrange", "+zrem", "+zcard", "+zremrangebyscore", "+zrangebyscore", "+persist",
            "+hget", "+hset", "+hlen", "+hexists",
        ]
    }

    /// The same as one line for redis-cli.
    public static func setUserLine(tenant: String, password: String) -> String {
        setUserArguments(tenant: tenant, password: password).joined(separator: " ")
    }
}
