/// A `redis://[user[:password]@]host[:port][/db]` URL. The password is kept for `AUTH` and never
/// printed: `description` masks it.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: Int
    public var user: String?
    public var password: String?

    public init(host: String, port: Int, database: Int = 0, user: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
    }

    public init?(parsing text: String) {
        guard text.hasPrefix("redis://") else { return nil }
        var rest = Substring(text.dropFirst(8))
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = String(credentials[..<colon])
                user = name.isEmpty ? nil : name
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count).dropFirst()
        database = path.isEmpty ? 0 : (Int(path) ?? -1)
        guard database >= 0, database < 65536 else { return nil }
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else {
                return nil
            }
            port = parsed
        } else {
            host = String(authority)
            port = 6379
        }
        guard !host.isEmpty else { return nil }
    }

    public var description: String {
        let credentials = user.map { "\($0):***@" } ?? (password != nil ? "***@" : "")
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }
}
