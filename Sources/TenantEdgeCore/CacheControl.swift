/// The `Cache-Control` directives a shared cache acts on (RFC 9111 5.2). Unknown directives are
/// ignored, as the RFC requires. A `max-age` or `s-maxage` that is malformed (`max-age=-1`,
/// `max-age`, `max-age=soon`) or given twice with different values makes the response stale
/// (RFC 9111 4.2.1): `invalidFreshness` is set and the caller treats freshness as 0. Other malformed
/// delta-seconds count as absent.
public struct CacheControl: Sendable, Equatable {
    public var noStore = false
    public var noCache = false
    public var isPrivate = false
    public var isPublic = false
    public var mustRevalidate = false
    public var proxyRevalidate = false
    public var maxAge: Int? = nil
    public var sMaxAge: Int? = nil
    public var staleWhileRevalidate: Int? = nil
    public var staleIfError: Int? = nil
    /// A freshness directive was present but unusable: the response is stale on arrival.
    public var invalidFreshness = false

    public init() {}

    /// Parses a (possibly combined) header value such as `public, max-age=60, stale-if-error="30"`.
    public init(parsing value: String?) {
        guard let value else { return }
        for directive in Self.split(value) {
            let parts = directive.split(separator: "=", maxSplits: 1)
            guard let rawName = parts.first else { continue }
            let name = rawName.trimmingSpaces().lowercased()
            var argument: String? = parts.count > 1 ? parts[1].trimmingSpaces() : nil
            if let quoted = argument, quoted.count >= 2, quoted.hasPrefix("\""), quoted.hasSuffix("\"") {
                argument = String(quoted.dropFirst().dropLast())
            }
            let seconds = argument.flatMap(Self.deltaSeconds)
            switch name {
            case "no-store": noStore = true
            // with a field list we still revalidate the whole response: stricter, still correct
            case "no-cache": noCache = true
            case "private": isPrivate = true
            case "public": isPublic = true
            case "must-revalidate": mustRevalidate = true
            case "proxy-revalidate": proxyRevalidate = true
            case "max-age": Self.setFreshness(&maxAge, seconds, invalid: &invalidFreshness)
            case "s-maxage": Self.setFreshness(&sMaxAge, seconds, invalid: &invalidFreshness)
            case "stale-while-revalidate": staleWhileRevalidate = seconds
            case "stale-if-error": staleIfError = seconds
            default: continue
            }
        }
    }

    /// A freshness directive's value: the first valid one, and invalid when absent, malformed or
    /// repeated with another value.
    private static func setFreshness(_ slot: inout Int?, _ seconds: Int?, invalid: inout Bool) {
        guard let seconds else {
            invalid = true
            return
        }
        if let existing = slot, existing != seconds { invalid = true }
        if slot == nil { slot = seconds }
    }

    /// Splits on commas outside quoted strings.
    static func split(_ value: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for character in value {
            if character == "\"" { quoted.toggle() }
            if character == "," && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts.filter { !$0.trimmingSpaces().isEmpty }
    }

    /// RFC 9111 1.2.2: digits only; values beyond 2^31 saturate rather than fail.
    public static func deltaSeconds(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text.prefix(10)).map { min($0, 2_147_483_648) }
    }
}
