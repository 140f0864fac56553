/// The walk that finds the client behind trusted proxies, the way nginx's `real_ip_recursive on`
/// does: from the socket peer, through the hops of `X-Forwarded-For` from the right, while the
/// address in hand is a trusted proxy; the first untrusted address is the client. A hop that is
/// not an address stops the walk at the last trusted one; when every hop is trusted, the
/// left-most is the client. Empty hops (`a,,b`) are skipped.
///
/// The caller feeds the header's values last line first, so it can read them where they lie (no
/// joined string, no array of hops); each value is read as bytes in place, which matters because
/// this runs on every request of a geo-routed tenant.
public struct ForwardedForWalk {
    private let proxies: TrustedProxies
    /// The client as far as the walk has got: the peer, or the last hop a trusted address vouched for.
    public private(set) var client: IPAddress
    /// True once the client is known: an untrusted address, or a hop that was not an address.
    public private(set) var isFinished: Bool

    public init(proxies: TrustedProxies, peer: IPAddress) {
        self.proxies = proxies
        client = peer
        isFinished = proxies.isEmpty || !proxies.isTrusted(peer)
    }

    /// One value of `X-Forwarded-For`, the last line first.
    public mutating func step(_ value: String) {
        guard !isFinished else { return }
        var value = value
        value.withUTF8 { step(utf8: UnsafeRawBufferPointer($0)) }
    }

    private mutating func step(utf8 bytes: UnsafeRawBufferPointer) {
        var end = bytes.count
        var index = end
        while index > 0, !isFinished {
            index -= 1
            guard bytes[index] == UInt8(ascii: ",") else { continue }
            visit(UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<end]))
            end = index
        }
        if !isFinished { visit(UnsafeRawBufferPointer(rebasing: bytes[0..<end])) }
    }

    /// One hop; an empty one (between two commas) is skipped.
    private mutating func visit(_ hop: UnsafeRawBufferPointer) {
        guard !hop.isEmpty else { return }
        guard let address = IPAddress(utf8: Self.bareAddress(hop)) else {
            isFinished = true
            return
        }
        client = address
        if !proxies.isTrusted(address) { isFinished = true }
    }

    /// A hop as proxies write it, without spaces, brackets or port: `[2001:db8::1]:443`, `1.2.3.4:80`.
    static func bareAddress(_ hop: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = 0
        var end = hop.count
        while start < end, isBlank(hop[start]) { start += 1 }
        while end > start, isBlank(hop[end - 1]) { end -= 1 }
        let text = UnsafeRawBufferPointer(rebasing: hop[start..<end])
        if text.first == UInt8(ascii: "["), let close = text.firstIndex(of: UInt8(ascii: "]")) {
            return UnsafeRawBufferPointer(rebasing: text[1..<close])
        }
        var colons = 0
        var firstColon = text.count
        for (offset, byte) in text.enumerated() where byte == UInt8(ascii: ":") {
            if colons == 0 { firstColon = offset }
            colons += 1
        }
        if colons == 1 { return UnsafeRawBufferPointer(rebasing: text[0..<firstColon]) }  // IPv4 with a port
        return text
    }
}
