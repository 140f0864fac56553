/// One HTTP header as the core sees it: the server converts from NIO's `HTTPHeaders` at its edge,
/// so the cache rules stay testable without NIO.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == HeaderField {
    /// The first value of `name`, compared case-insensitively.
    public func first(_ name: String) -> String? {
        first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// All values of `name`, joined as one comma-separated list (RFC 9110 5.3).
    public func combined(_ name: String) -> String? {
        let values = filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    public func contains(_ name: String) -> Bool { contains { $0.name.caseInsensitiveEquals(name) } }

    public mutating func remove(_ name: String) { removeAll { $0.name.caseInsensitiveEquals(name) } }

    /// Replaces every `name` with one header carrying `value`.
    public mutating func replace(_ name: String, with value: String) {
        remove(name)
        append(HeaderField(name, value))
    }
}

extension String {
    /// ASCII case-insensitive comparison without allocating, for header names. It reads both
    /// strings' bytes in place (a zipped pair of UTF-8 views cost 250 instructions a call on the
    /// hit path, where this is asked for every request header).
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        let inPlace = utf8.withContiguousStorageIfAvailable { lhs in
            other.utf8.withContiguousStorageIfAvailable { rhs in
                ASCII.equalIgnoringCase(UnsafeRawBufferPointer(lhs), UnsafeRawBufferPointer(rhs))
            }
        }
        if let inPlace, let result = inPlace { return result }
        return Array(utf8).withUnsafeBytes { lhs in
            Array(other.utf8).withUnsafeBytes { rhs in ASCII.equalIgnoringCase(lhs, rhs) }
        }
    }

    /// Byte-for-byte equality of the two strings' UTF-8. `==` compares canonical equivalence
    /// (`é` as one scalar or two), which is wrong wherever the bytes themselves are keyed or digested.
    public func hasSameUTF8(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        // Eight bytes at a time: `elementsEqual` went a byte at a time, about 19 instructions each.
        let inPlace = utf8.withContiguousStorageIfAvailable { lhs in
            other.utf8.withContiguousStorageIfAvailable { rhs in
                Self.sameBytes(UnsafeRawBufferPointer(lhs), UnsafeRawBufferPointer(rhs))
            }
        }
        if let inPlace, let result = inPlace { return result }
        return utf8.elementsEqual(other.utf8)
    }

    private static func sameBytes(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var at = 0
        while at + 8 <= lhs.count {
            guard
                lhs.loadUnaligned(fromByteOffset: at, as: UInt64.self)
                    == rhs.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            else { return false }
            at += 8
        }
        while at < lhs.count {
            guard lhs[at] == rhs[at] else { return false }
            at += 1
        }
        return true
    }
}

/// Headers that describe one connection, not the resource (RFC 9110 7.6.1): never stored and never
/// forwarded by a proxy.
public enum HopByHop {
    public static let names: [String] = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Removes hop-by-hop headers, including any named in `Connection`.
    public static func strip(_ headers: inout [HeaderField]) {
        var extra: [String] = []
        if let connection = headers.combined("connection") {
            extra = connection.split(separator: ",").map { $0.trimmingSpaces().lowercased() }
        }
        headers.removeAll { field in
            names.contains { field.name.caseInsensitiveEquals($0) }
                || extra.contains { field.name.caseInsensitiveEquals($0) }
        }
    }
}

extension StringProtocol {
    /// Drops leading and trailing spaces and tabs (HTTP optional whitespace).
    public func trimmingSpaces() -> String {
        let bytes = Array(utf8)
        guard let start = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
            let end = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }
}

/// Request headers that tell an upstream where a request came from or what it "really" was. None
/// of them is part of the cache key, so whatever one client puts there would shape the answer
/// stored for everyone. Proxies in front (even trusted ones, such as cloud load balancers) pass a
/// client's own `X-Forwarded-Host` through unchanged, so only what a trusted proxy adds about the
/// connection is kept from it; everything about the host is the node's own.
public enum ForwardingHeaders {
    /// Kept from a trusted proxy (`geoip.trusted_proxies`), replaced when the peer is anyone else.
    public static let fromTrustedProxies: [String] = ["x-forwarded-for", "x-forwarded-proto"]

    /// Never forwarded as sent, whoever sends them: the node sets `Host` and `X-Forwarded-Host`
    /// itself and drops the rest (rewrite, override and client-address headers frameworks honour).
    public static let neverForwarded: [String] = [
        "forwarded", "x-forwarded-host", "x-forwarded-port", "x-forwarded-server", "x-forwarded-scheme",
        "x-forwarded-prefix", "x-forwarded-ssl", "x-forwarded-uri", "x-forwarded-path", "x-real-ip",
        "x-original-url", "x-original-uri", "x-rewrite-url", "x-original-host", "x-host", "x-url-scheme",
        "front-end-https", "x-http-method-override", "x-http-method", "x-method-override", "client-ip",
        "true-client-ip", "x-client-ip", "x-cluster-client-ip",
    ]

    /// Whether `name` is one of `names`, also when spelt with `_` for `-` (CGI-style upstreams such as
    /// Rack and PHP read `X_Forwarded_Host` as `X-Forwarded-Host`).
    static func matches(_ name: String, _ names: [String]) -> Bool {
        if names.contains(where: { name.caseInsensitiveEquals($0) }) { return true }
        guard name.utf8.contains(UInt8(ascii: "_")) else { return false }
        let dashed = String(decoding: name.utf8.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }, as: UTF8.self)
        return names.contains { dashed.caseInsensitiveEquals($0) }
    }

    /// Sets what the upstream learns of the request's origin: `Host` and `X-Forwarded-Host` are the
    /// tenant's canonical host, `X-Forwarded-Proto` is `http` (the traffic listener's scheme) unless
    /// a trusted proxy said otherwise, and `X-Forwarded-For` is the peer, appended to a trusted
    /// proxy's chain.
    public static func apply(to headers: inout [HeaderField], peer: String?, peerIsTrusted: Bool, canonicalHost: String)
    {
        headers.removeAll { field in
            matches(field.name, neverForwarded)
                || (!peerIsTrusted && matches(field.name, fromTrustedProxies))
                || (field.name.utf8.contains(UInt8(ascii: "_")) && matches(field.name, fromTrustedProxies + ["host"]))
        }
        if let peer {
            let chain = peerIsTrusted ? headers.combined("x-forwarded-for").map { "\($0), \(peer)" } ?? peer : peer
            headers.replace("X-Forwarded-For", with: chain)
        }
        if !headers.contains("x-forwarded-proto") { headers.replace("X-Forwarded-Proto", with: "http") }
        headers.replace("X-Forwarded-Host", with: canonicalHost)
        headers.replace("Host", with: canonicalHost)
    }
}
