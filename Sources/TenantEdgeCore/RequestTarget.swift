/// The request target as the cache keys it and the upstream receives it (RFC 9112 3.2).
///
/// Only origin-form (`/path?query`) reaches a tenant upstream; an absolute-form target
/// (`http://host/path`) is reduced to origin-form and its authority becomes the request's host.
/// Authority-form (`CONNECT host:port`), asterisk-form (`*`) and anything that does not start with
/// `/` are refused: appended to an upstream URL they would name another host.
///
/// With normalisation on (the default, `normalize_path` per tenant) the path is put in the form
/// RFC 3986 6.2.2 allows, so `/a/../b`, `//b` and `/%62` are one key and one upstream request:
/// percent-encoded unreserved characters are decoded, other percent-encodings get upper-case hex,
/// dot segments are removed and runs of `/` are merged (nginx's `merge_slashes`). The query is
/// kept byte for byte.
public enum RequestTarget {
    public enum Refusal: Error, Equatable, Sendable {
        /// Not a target this cache forwards (`400`): the reason, for the JSON body.
        case badTarget(String)
        /// `CONNECT`: a tunnel is never opened (`405`).
        case methodNotAllowed
    }

    /// A target accepted for a tenant: the origin-form to key and forward, and the host an
    /// absolute-form target named (nil for origin-form: the `Host` header names it).
    public struct Accepted: Equatable, Sendable {
        public var target: String
        public var authority: String?
        /// Whether `target` is already what `normalize` would make of it (`isNormal`), found in the
        /// same pass that checked its bytes, so a hit reads its target once.
        public var isNormal: Bool
    }

    /// Checks and reduces a client's target. `normalize`: the tenant's `normalize_path`; it needs the
    /// tenant, which may depend on `authority`, so callers reduce first and normalise second.
    public static func accept(method: String, rawTarget: String) -> Result<Accepted, Refusal> {
        if method == "CONNECT" { return .failure(.methodNotAllowed) }
        // The common case, origin-form with only allowed bytes: the same string back, nothing copied.
        if rawTarget.utf8.first == UInt8(ascii: "/"),
            let scan = rawTarget.utf8.withContiguousStorageIfAvailable(scanOriginForm), scan.allowed
        {
            return .success(Accepted(target: rawTarget, authority: nil, isNormal: scan.normal))
        }
        var target = Substring(rawTarget)
        var authority: String? = nil
        if !target.hasPrefix("/") {
            let lower = target.prefix(8).lowercased()
            let schemeLength = lower.hasPrefix("http://") ? 7 : lower.hasPrefix("https://") ? 8 : 0
            guard schemeLength > 0 else {
                return .failure(.badTarget("the request target must be a path starting with '/'"))
            }
            let rest = target.dropFirst(schemeLength)
            let host = rest.prefix { $0 != "/" && $0 != "?" }
            guard HostName.isValid(host) else {
                return .failure(.badTarget("the absolute-form target has no valid host"))
            }
            authority = String(host)
            let remainder = rest.dropFirst(host.count)
            target = remainder.hasPrefix("/") ? remainder : Substring("/" + remainder)
        }
        // A backslash is no URI character, and upstreams such as IIS read it as `/`: a second path syntax
        // the cache key would not see.
        guard target.utf8.allSatisfy(isTargetByte) else {
            return .failure(.badTarget("the request target holds a byte that is not allowed"))
        }
        let accepted = String(target)
        return .success(Accepted(target: accepted, authority: authority, isNormal: isNormal(accepted)))
    }

    /// One pass over an origin-form target: whether every byte is allowed (`isTargetByte`) and
    /// whether it is in normal form (`NormalFormScan`, the rule `isNormal` applies).
    private static func scanOriginForm(_ bytes: UnsafeBufferPointer<UInt8>) -> (allowed: Bool, normal: Bool) {
        var scan = NormalFormScan()
        for byte in bytes {
            guard isTargetByte(byte) else { return (false, false) }
            scan.read(byte)
        }
        return (true, scan.isNormal)
    }

    /// The normal-form rule read one byte at a time, so that `isNormal` and the accepting scan
    /// apply one rule: in the path (before `?`), no `%`, no `//`, no `/./` or `../`, and no
    /// ending in `/.` or `/..`.
    struct NormalFormScan {
        private var previous: UInt8 = 0
        private var beforePrevious: UInt8 = 0
        private var inPath = true
        private var broken = false

        mutating func read(_ byte: UInt8) {
            guard inPath, !broken else { return }
            if byte == UInt8(ascii: "?") {
                inPath = false
                return
            }
            if byte == UInt8(ascii: "%") { broken = true }
            if byte == UInt8(ascii: "/") {
                if previous == UInt8(ascii: "/") { broken = true }  // `//`
                if previous == UInt8(ascii: "."),
                    beforePrevious == UInt8(ascii: "/") || beforePrevious == UInt8(ascii: ".")
                {
                    broken = true  // `/./` or `../`
                }
            }
            beforePrevious = previous
            previous = byte
        }

        var isNormal: Bool {
            let endsInDotSegment =
                previous == UInt8(ascii: ".")
                && (beforePrevious == UInt8(ascii: "/") || beforePrevious == UInt8(ascii: "."))
            return !broken && !endsInDotSegment
        }
    }

    /// Visible ASCII but `#` and backslash.
    static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "#") && byte != UInt8(ascii: "\\")
    }

    /// Whether `normalize` would leave the target as it is: no `%` in the path, no `//`, no dot
    /// segment. Checked first, so a target already in normal form costs one pass and no copy.
    public static func isNormal(_ target: String) -> Bool {
        var scan = NormalFormScan()
        for byte in target.utf8 { scan.read(byte) }
        return scan.isNormal
    }

    /// Whether a target appended to an upstream's base path stays under it on any common upstream:
    /// no dot segment (also `..;`, which Tomcat reads as `..`) and no encoded `/` or backslash (which
    /// some servers decode before resolving). Only asked when the upstream has a base path, where a
    /// tenant sharing a server with another would otherwise reach the other's tree.
    public static func staysUnderBasePath(_ target: String) -> Bool {
        let path = QueryString.split(target: target).path
        let lower = path.lowercased()
        if lower.contains("%2f") || lower.contains("%5c") { return false }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            let name = segment.prefix { $0 != ";" }
            if name == "." || name == ".." || name.lowercased() == "%2e" || name.lowercased().hasPrefix("%2e%2e")
                || name.lowercased() == ".%2e" || name.lowercased() == "%2e."
            {
                return false
            }
        }
        return true
    }

    /// The key and upstream form of an accepted origin-form target, or nil when its
    /// percent-encoding is broken (`%4`, `%zz`), which is refused with `400`.
    public static func normalize(_ target: String) -> String? {
        let bytes = Array(target.utf8)
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
        guard let decoded = decodeUnreserved(bytes[..<queryStart]) else { return nil }
        var segments: [ArraySlice<UInt8>] = []
        let parts = decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        for part in parts {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                _ = segments.popLast()
                continue
            }
            segments.append(part)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for segment in segments {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: segment)
        }
        // A path that ended in `/` (or in a dot segment) keeps its trailing slash; `/` stays `/`.
        let last = parts.last
        let endsInSlash =
            decoded.last == UInt8(ascii: "/")
            || last.map { $0.elementsEqual([46]) || $0.elementsEqual([46, 46]) } ?? true
        if out.isEmpty || endsInSlash { out.append(UInt8(ascii: "/")) }
        out.append(contentsOf: bytes[queryStart...])
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `%XX` of unreserved characters and upper-cases the hex of the rest; nil for a `%` not
    /// followed by two hex digits.
    private static func decodeUnreserved(_ path: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        var index = path.startIndex
        while index < path.endIndex {
            let byte = path[index]
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                index += 1
                continue
            }
            guard path.endIndex - index >= 3, let high = hexValue(path[index + 1]), let low = hexValue(path[index + 2])
            else {
                return nil
            }
            let value = high << 4 | low
            if isUnreserved(value) {
                out.append(value)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex(high))
                out.append(upperHex(low))
            }
            index += 3
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    private static func upperHex(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x41 + nibble - 10 }

    /// RFC 3986 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
    static func isUnreserved(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
    }
}

/// `Host` values (RFC 9110 7.2): `host[:port]`, where host is a DNS name, an IPv4 address or a
/// bracketed IPv6 literal. Anything else (`a:1@evil`, spaces, two colons, an empty name) is not a
/// host and the request gets `400`.
public enum HostName {
    public static func isValid<S: StringProtocol>(_ value: S) -> Bool {
        var text = String(value)  // free for a String; the check reads its bytes in place
        return text.withUTF8(isValid(bytes:))
    }

    /// The same rule over bytes in place: the request parser checks an absolute-form authority with it.
    package static func isValid(bytes: UnsafeRawBufferPointer) -> Bool {
        isValid(
            bytes: UnsafeBufferPointer(
                start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count))
    }

    private static func isValid(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 261 else { return false }
        var hostEnd = bytes.count
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
            let literal = bytes[1..<close]
            guard literal.allSatisfy({ isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
                return false
            }
            hostEnd = close + 1
            guard hostEnd == bytes.count || bytes[hostEnd] == UInt8(ascii: ":") else { return false }
        } else {
            hostEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.count
            let name = bytes[..<hostEnd]
            guard !name.isEmpty, name.count <= 254, name.first != UInt8(ascii: ".") else { return false }
            var previous: UInt8 = 0
            for byte in name {
                guard isNameByte(byte) else { return false }
                if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") { return false }  // empty label
                previous = byte
            }
        }
        guard hostEnd < bytes.count else { return true }
        let port = bytes[(hostEnd + 1)...]
        guard (1...5).contains(port.count), port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return port.reduce(0) { $0 * 10 + Int($1 - 0x30) } <= 65_535  // at most five digits: no overflow
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x2E || byte == 0x5F
    }
}
