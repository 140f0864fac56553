/// `cache.redis.sentinel`: the L2 primary is whatever the sentinels name for `master`, followed
/// through failovers (`+switch-master`), instead of a fixed `cache.redis.url`.
public struct RedisSentinelConfig: Sendable, Equatable {
    /// Sentinels as `host:port`, asked in turn until one answers.
    public var addresses: [String]
    /// The name the sentinels monitor the primary under (`sentinel monitor <master> ...`).
    public var master: String
    /// The primary's password (`AUTH`), read at start; nil: none.
    public var passwordFile: String?
    /// The sentinels' own password, when they require one; nil: none.
    public var sentinelPasswordFile: String?
    /// The database the tier selects on the primary.
    public var database: Int = 0

    public init(
        addresses: [String], master: String, passwordFile: String? = nil, sentinelPasswordFile: String? = nil,
        database: Int = 0
    ) {
        self.addresses = addresses
        self.master = master
        self.passwordFile = passwordFile
        self.sentinelPasswordFile = sentinelPasswordFile
        self.database = database
    }

    /// The most sentinels a node asks: a deployment has three or five.
    public static let maxAddresses = 16

    /// A sentinel's address: `host:port` or `[ipv6]:port`, the port from 1 to 65,535.
    public static func isValidAddress(_ text: String) -> Bool {
        guard HostName.isValid(text), let colon = text.lastIndex(of: ":"), !text.hasSuffix("]"),
            let port = Int(text[text.index(after: colon)...])
        else { return false }
        return (1...65_535).contains(port)
    }

    /// A master name as the sentinels accept it: 1–64 letters, digits, `.`, `-`, `_`. The name is
    /// sent in a command and compared with what a sentinel publishes, so nothing else is allowed.
    public static func isValidMaster(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            }
    }
}
