/// `storage.postgres` of the origin: a `postgres://user[:password]@host[:port]/database` URL, the
/// pool size and TLS. The password is kept for the connection and never printed: `description`
/// masks it.
public struct PostgresEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    /// Parses the URL; nil for anything else (another scheme, no user or database, a bad host or
    /// port, query parameters: TLS is set with `tls`, not in the URL).
    public init?(parsing text: String) {
        let scheme = text.hasPrefix("postgres://") ? 11 : text.hasPrefix("postgresql://") ? 13 : 0
        guard scheme > 0, text.utf8.count <= 2048 else { return nil }
        var rest = Substring(text.dropFirst(scheme))
        guard !rest.contains("?"), !rest.contains("#"), let at = rest.lastIndex(of: "@") else { return nil }
        let credentials = rest[..<at]
        rest = rest[rest.index(after: at)...]
        if let colon = credentials.firstIndex(of: ":") {
            user = String(credentials[..<colon])
            password = String(credentials[credentials.index(after: colon)...])
        } else {
            user = String(credentials)
        }
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let authority = rest[..<slash]
        database = String(rest[rest.index(after: slash)...])
        guard !user.isEmpty, Self.isName(user), Self.isName(database), HostName.isValid(authority) else { return nil }
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon])
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(parsed) else {
                return nil
            }
            port = parsed
        } else {
            host = String(authority)
            port = 5432
        }
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
    }

    /// User and database names: 1–63 letters, digits, `_`, `-`, `.` (what an operator names them).
    static func isName(_ name: String) -> Bool {
        (1...63).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
            }
    }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)\(password == nil ? "" : ":***")@\(shownHost):\(port)/\(database)"
    }
}

/// Where the origin keeps its state (`storage`).
public enum OriginStorage: Sendable, Equatable {
    /// One SQLite file in `state_dir` (the default).
    case embedded
    /// PostgreSQL, which several origin replicas share.
    case postgres(Postgres)

    public struct Postgres: Sendable, Equatable {
        public var url: String
        /// Connections of each replica. Default 8.
        public var poolSize: Int = 8
        /// `disable`, `require` (encrypted, any certificate) or `verify` (the server's certificate
        /// checked against `caFile`, or the system's roots). Default `verify`.
        public var tls: TLSMode = .verify
        public var caFile: String? = nil
        public init(url: String) { self.url = url }
    }

    public enum TLSMode: String, Sendable, Equatable, CaseIterable { case disable, require, verify }
}
