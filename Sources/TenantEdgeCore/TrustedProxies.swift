import Foundation

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`, or one address), matched
/// on the address bytes. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as dual-stack sockets
/// report IPv4 peers) are treated as the IPv4 address they carry, on both sides.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]  // 4 or 16
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddressBytes.parse(String(parts[0])) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0, value <= address.count * 8 else { return nil }
            length = value
        } else {
            length = address.count * 8
        }
        bytes = IPNetwork.masked(address, length)
        prefixLength = length
    }

    public func contains(_ address: [UInt8]) -> Bool {
        address.count == bytes.count && IPNetwork.masked(address, prefixLength) == bytes
    }

    public var description: String { "\(IPAddressBytes.format(bytes))/\(prefixLength)" }

    private static func masked(_ address: [UInt8], _ length: Int) -> [UInt8] {
        address.enumerated().map { index, byte in
            let bits = max(0, min(8, length - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
    }
}

/// Text addresses to bytes and back, through the C library's `inet_pton`/`inet_ntop` (no parser of ours).
public enum IPAddressBytes {
    /// 4 bytes for IPv4 (and for IPv4-mapped IPv6), 16 for IPv6; nil when `text` is not an address.
    public static func parse(_ text: String) -> [UInt8]? {
        if !text.contains(":") {
            var v4 = [UInt8](repeating: 0, count: 4)
            return inet_pton(AF_INET, text, &v4) == 1 ? v4 : nil
        }
        var v6 = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        if v6[0..<10].allSatisfy({ $0 == 0 }) && v6[10] == 0xff && v6[11] == 0xff { return Array(v6[12...]) }
        return v6
    }

    public static func format(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, bytes, &text, socklen_t(text.count)) != nil else { return "?" }
        return String(cString: text)
    }
}

/// `geoip.trusted_proxies`: which socket peers may tell the client's address in `X-Forwarded-For`.
///
/// The client is found the way nginx's `real_ip_recursive on` finds it: starting from the peer,
/// walk the header's hops from the right while the address in hand is a trusted proxy; the first
/// untrusted address is the client. Only that hop is vouched for: every hop to its left was written
/// by the client itself and may be forged. (The interface says "left-most untrusted hop", which a
/// client behind a trusted proxy could choose freely; docs/decisions.md, entry 27.)
public struct TrustedProxies: Sendable {
    public let networks: [IPNetwork]

    /// Throws naming the first entry that is not an address or a CIDR network.
    public init(_ entries: [String]) throws(EdgeError) {
        var networks: [IPNetwork] = []
        for (index, entry) in entries.enumerated() {
            guard let network = IPNetwork(entry.trimmingCharacters(in: .whitespaces)) else {
                throw EdgeError(.invalidConfig, "geoip.trusted_proxies[\(index)]: must be an address or CIDR, got '\(entry)'")
            }
            networks.append(network)
        }
        self.networks = networks
    }

    public var isEmpty: Bool { networks.isEmpty }

    public func isTrusted(_ address: String) -> Bool {
        guard !networks.isEmpty, let bytes = IPAddressBytes.parse(address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The client's address: the peer's unless the peer is trusted, then the right-most untrusted
    /// hop of `forwardedFor` (the header's values, in order). A hop that is not an address stops
    /// the walk at the last trusted one; when every hop is trusted, the left-most is the client.
    public func clientAddress(peer: String, forwardedFor: [String]) -> String {
        guard !networks.isEmpty, isTrusted(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { Self.bareAddress($0) }
        var current = peer
        for hop in hops.reversed() {
            guard IPAddressBytes.parse(hop) != nil else { return current }
            current = hop
            if !isTrusted(hop) { return hop }
        }
        return current
    }

    /// A hop as proxies write it, without spaces, brackets or port: `[2001:db8::1]:443`, `1.2.3.4:80`.
    static func bareAddress(_ hop: Substring) -> String {
        var text = hop.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            text = String(text[text.index(after: text.startIndex)..<close])
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = String(text[..<colon])  // IPv4 with a port
        }
        return text
    }
}
