import Foundation

/// A purge as the admin API and the origin take it: `{"tenant","keys","tags","prefixes","all"}`. Decoding is
/// strict (unknown fields and wrong types are refused with the field's name) because a purge that
/// silently ignores a misspelt field leaves stale data out while reporting success.
public struct PurgeRequest: Sendable, Equatable {
    public var tenant: String
    public var keys: [String] = []
    public var tags: [String] = []
    public var prefixes: [String] = []
    public var all: Bool = false

    public init(tenant: String, keys: [String] = [], tags: [String] = [], prefixes: [String] = [], all: Bool = false) {
        self.tenant = tenant
        self.keys = keys
        self.tags = tags
        self.prefixes = prefixes
        self.all = all
    }

    /// Bounds on a purge a client sends (admin API, origin publish). A purge travels to every node
    /// of every region through the feed, so its size is everyone's cost: an oversized one is refused
    /// where it enters, never where it is applied (a node refusing a feed event would stop following).
    public enum Limits {
        /// Largest purge body accepted: 256 KiB.
        public static let bodyBytes = 256 << 10
        /// Keys, tags and prefixes together in one purge: 256.
        public static let items = 256
        /// Longest key, tag or prefix: 8 KiB (`limits.max_target_bytes`' default).
        public static let itemBytes = 8192
    }

    /// Decodes and validates a client's purge, within `Limits`; the error message names the
    /// offending field.
    public init(json: [UInt8]) throws(EdgeError) {
        guard json.count <= Limits.bodyBytes else {
            throw EdgeError(.badRequest, "body is larger than \(Limits.bodyBytes) bytes")
        }
        guard let object = JSONValue.parse(json) else { throw EdgeError(.badRequest, "body is not valid JSON") }
        guard let fields = object.objectValue else { throw EdgeError(.badRequest, "body must be a JSON object") }
        try self.init(fields: fields)
        guard keys.count + tags.count + prefixes.count <= Limits.items else {
            throw EdgeError(.badRequest, "keys, tags and prefixes add up to more than \(Limits.items)")
        }
        for (name, list) in [("keys", keys), ("tags", tags), ("prefixes", prefixes)]
        where list.contains(where: { $0.utf8.count > Limits.itemBytes }) {
            throw EdgeError(.badRequest, "field '\(name)' holds a value longer than \(Limits.itemBytes) bytes")
        }
        guard tenant.utf8.count <= 63 else { throw EdgeError(.badRequest, "field 'tenant' is longer than a tenant id") }
    }

    /// Decodes from a JSON object's fields; `extraFields` are allowed and ignored (an invalidation
    /// event's `seq` and `published_at`).
    public init(fields: [String: JSONValue], extraFields: Set<String> = []) throws(EdgeError) {
        let known: Set<String> = Set(["tenant", "keys", "tags", "prefixes", "all"]).union(extraFields)
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw EdgeError(.badRequest, "unknown field '\(unknown)'")
        }
        guard let tenant = fields["tenant"]?.stringValue, !tenant.isEmpty else {
            throw EdgeError(.badRequest, "field 'tenant' must be a non-empty string")
        }
        func strings(_ name: String) throws(EdgeError) -> [String] {
            guard let value = fields[name] else { return [] }
            guard let list = value.stringsValue else {
                throw EdgeError(.badRequest, "field '\(name)' must be an array of strings")
            }
            if list.contains(where: \.isEmpty) {
                throw EdgeError(.badRequest, "field '\(name)' must not contain empty strings")
            }
            return list
        }
        self.tenant = tenant
        self.keys = try strings("keys")
        self.tags = try strings("tags")
        self.prefixes = try strings("prefixes")
        if let all = fields["all"] {
            guard let flag = all.boolValue else {
                throw EdgeError(.badRequest, "field 'all' must be true or false")
            }
            self.all = flag
        }
        if keys.isEmpty && tags.isEmpty && prefixes.isEmpty && !self.all {
            throw EdgeError(.badRequest, "nothing to purge: give keys, tags, prefixes or \"all\": true")
        }
    }
}
