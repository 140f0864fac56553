/// What Redis Sentinel says about a primary, read strictly: a sentinel's answer becomes an address
/// the node connects to, so only a valid host (a DNS name, an IPv4 or IPv6 address) and a port from
/// 1 to 65,535 are taken, never arbitrary bytes.
public enum SentinelAnswer {
    /// A primary's address as a sentinel gave it.
    public struct Primary: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// `SENTINEL get-master-addr-by-name` answers `[host, port]`; nil for anything not an address.
    public static func primary(host: [UInt8], port: [UInt8]) -> Primary? {
        guard (1...5).contains(port.count), port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let number = port.reduce(0) { $0 * 10 + Int($1 - 0x30) }  // at most five digits: no overflow
        guard (1...65_535).contains(number), (1...253).contains(host.count),
            let text = String(validating: host, as: UTF8.self)
        else { return nil }
        // An IPv6 address comes bare from a sentinel; `HostName` reads it in brackets.
        let authority = text.contains(":") ? "[\(text)]:\(number)" : "\(text):\(number)"
        guard HostName.isValid(authority) else { return nil }
        return Primary(host: text, port: number)
    }

    /// A `+switch-master` message, `<master> <old host> <old port> <new host> <new port>`: the new
    /// primary when it is about `master`, nil for another master's switch or anything malformed.
    public static func switched(payload: [UInt8], master: String) -> Primary? {
        guard payload.count <= 1024 else { return nil }
        let fields = payload.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].elementsEqual(master.utf8) else { return nil }
        return primary(host: Array(fields[3]), port: Array(fields[4]))
    }

    /// `ROLE` answers an array whose first item is `master` on a primary.
    public static func isPrimaryRole(_ first: [UInt8]) -> Bool { first.elementsEqual("master".utf8) }
}
