import Foundation

/// An IPv4 or IPv6 address as two 64-bit halves (IPv4 in the low 32 bits), so that parsing and
/// matching allocate nothing: this runs for every request of a geo-routed tenant. IPv4-mapped IPv6
/// addresses (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4 peers) are the IPv4 address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public var isIPv4: Bool
    public var bitCount: Int { isIPv4 ? 32 : 128 }

    /// Parses with the C library's `inet_pton` (no parser of ours); nil when `text` is not an address.
    /// Not generic: callers in other modules would get an unspecialized, much slower copy.
    public init?(_ text: Substring) { self.init(String(text)) }

    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ IPAddress(utf8: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// Parses an address in text given as bytes (a hop of `X-Forwarded-For`, read in place):
    /// copied with a terminating NUL into a stack buffer for `inet_pton`, so nothing is allocated.
    public init?(utf8 text: UnsafeRawBufferPointer) {
        // INET6_ADDRSTRLEN - 1; a NUL would end the text early for inet_pton, so it is refused
        guard text.count <= 45, !text.contains(0) else { return nil }
        let isV6 = text.contains(UInt8(ascii: ":"))
        var bytes: (UInt64, UInt64) = (0, 0)
        let parsed = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 48) { cText in
            let raw = UnsafeMutableRawBufferPointer(cText)
            raw.copyMemory(from: text)
            raw[text.count] = 0
            return withUnsafeMutableBytes(of: &bytes) {
                inet_pton(isV6 ? AF_INET6 : AF_INET, cText.baseAddress, $0.baseAddress) == 1
            }
        }
        guard parsed else { return nil }
        let first = UInt64(bigEndian: bytes.0)
        let second = UInt64(bigEndian: bytes.1)
        if isV6 {
            self.init(ipv6High: first, low: second)
        } else {
            self.init(ipv4: UInt32(truncatingIfNeeded: first >> 32))
        }
    }

    public init(ipv4: UInt32) { self.init(high: 0, low: UInt64(ipv4), isIPv4: true) }

    /// An IPv6 address from its two halves in host order; `::ffff:a.b.c.d` becomes IPv4.
    public init(ipv6High high: UInt64, low: UInt64) {
        if high == 0, low >> 32 == 0xffff {
            self.init(ipv4: UInt32(truncatingIfNeeded: low))
        } else {
            self.init(high: high, low: low, isIPv4: false)
        }
    }

    /// The address in text (`inet_ntop`), for logs and JSON.
    public var description: String {
        var text = [CChar](repeating: 0, count: 64)
        var bytes = isIPv4 ? (UInt64(low << 32).bigEndian, UInt64(0)) : (high.bigEndian, low.bigEndian)
        let written = withUnsafeBytes(of: &bytes) {
            inet_ntop(isIPv4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count))
        }
        return written == nil ? "?" : String(cString: text)
    }

    init(high: UInt64, low: UInt64, isIPv4: Bool) {
        self.high = high
        self.low = low
        self.isIPv4 = isIPv4
    }

    /// The address with every bit past the first `prefixLength` cleared.
    func masked(_ prefixLength: Int) -> IPAddress {
        let keep = isIPv4 ? prefixLength + 96 : prefixLength  // IPv4 sits in the low 32 of 128 bits
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        let highMask = isIPv4 ? UInt64.max : mask(keep)
        return IPAddress(high: high & highMask, low: low & mask(keep - 64), isIPv4: isIPv4)
    }
}

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`, or one address).
public struct IPNetwork: Sendable, Equatable {
    let base: IPAddress
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0, value <= address.bitCount else { return nil }
            length = value
        } else {
            length = address.bitCount
        }
        base = address.masked(length)
        prefixLength = length
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.isIPv4 == base.isIPv4 && address.masked(prefixLength) == base
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
                throw EdgeError(
                    .invalidConfig, "geoip.trusted_proxies[\(index)]: must be an address or CIDR, got '\(entry)'")
            }
            networks.append(network)
        }
        self.networks = networks
    }

    public var isEmpty: Bool { networks.isEmpty }

    public func isTrusted(_ address: String) -> Bool {
        guard !networks.isEmpty, let parsed = IPAddress(address) else { return false }
        return isTrusted(parsed)
    }

    func isTrusted(_ address: IPAddress) -> Bool { networks.contains { $0.contains(address) } }

    /// The client's address: the peer's unless the peer is trusted, then the right-most untrusted
    /// hop of `forwardedFor` (the header's values, in order); see `ForwardedForWalk`.
    public func clientAddress(peer: IPAddress, forwardedFor: [String]) -> IPAddress {
        var walk = ForwardedForWalk(proxies: self, peer: peer)
        for value in forwardedFor.reversed() where !walk.isFinished { walk.step(value) }
        return walk.client
    }

    /// `clientAddress` on text, for tests and tools; a peer that is not an address is returned as is.
    public func clientAddress(peer: String, forwardedFor: [String]) -> String {
        guard let address = IPAddress(peer) else { return peer }
        return clientAddress(peer: address, forwardedFor: forwardedFor).description
    }
}
