import Foundation

/// The audit log's hash chain. Each line is a JSON object with `seq`, `at`,
/// `event`, `actor`, `tenant`, `details`, `prev` and `hash`, where `hash` is the hex SHA-256 of
/// `prev` followed by the line's canonical JSON without `hash` (keys sorted, no spaces). The first
/// line's `prev` is 64 zeros. Editing, removing, reordering or inserting a line breaks the chain at
/// that line.
///
/// Pure logic: the SHA-256 function is injected (OpenSSL in the node and `edgectl`).
public struct AuditChain: Sendable {
    public typealias SHA256 = @Sendable ([UInt8]) -> [UInt8]
    public static let genesis = String(repeating: "0", count: 64)

    public private(set) var seq: Int = 0
    public private(set) var prev: String = AuditChain.genesis
    private let sha256: SHA256

    /// A chain continuing after `lastLine` (the log's last line), or a new one.
    public init(sha256: @escaping SHA256, continuingAfter lastLine: String? = nil) throws(EdgeError) {
        self.sha256 = sha256
        guard let lastLine, !lastLine.isEmpty else { return }
        guard let object = Self.parse(lastLine), let seq = object["seq"]?.integerValue,
            let hash = object["hash"]?.stringValue
        else {
            throw EdgeError(.io, "the audit log's last line is not an audit entry")
        }
        self.seq = seq
        prev = hash
    }

    /// The next line (without a newline), and the chain moved past it.
    public mutating func append(event: String, actor: String, tenant: String?, details: [String: String], at: Double)
        -> String
    {
        seq += 1
        var object: [String: JSONValue] = [
            "seq": .integer(seq), "at": .string(Self.timestamp(at)), "event": .string(event), "actor": .string(actor),
            "tenant": .string(tenant ?? "-"), "details": .object(details.mapValues { .string($0) }),
            "prev": .string(prev),
        ]
        let hash = Self.hash(of: object, sha256: sha256)
        object["hash"] = .string(hash)
        prev = hash
        return Self.canonical(object)
    }

    /// The outcome of checking a whole log.
    public enum Verification: Equatable, Sendable {
        case valid(entries: Int)
        /// `line` counts from 1.
        case broken(line: Int, reason: String)
    }

    /// Checks every line: its JSON, its `seq` (one more than the last), its `prev` (the last `hash`)
    /// and its own `hash`.
    public static func verify(_ text: String, sha256: SHA256) -> Verification {
        var prev = genesis
        var count = 0
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty { continue }
            let number = index + 1
            guard var object = parse(String(line)) else { return .broken(line: number, reason: "not a JSON object") }
            guard let hash = object.removeValue(forKey: "hash")?.stringValue else {
                return .broken(line: number, reason: "no hash")
            }
            guard object["seq"]?.integerValue == count + 1 else {
                return .broken(line: number, reason: "seq is not \(count + 1)")
            }
            guard object["prev"]?.stringValue == prev else {
                return .broken(line: number, reason: "prev is not the previous line's hash")
            }
            guard Self.hash(of: object, sha256: sha256) == hash else {
                return .broken(line: number, reason: "hash does not match the line")
            }
            prev = hash
            count += 1
        }
        return .valid(entries: count)
    }

    private static func hash(of object: [String: JSONValue], sha256: SHA256) -> String {
        let prev = object["prev"]?.stringValue ?? ""
        return Hex.encode(sha256(Array((prev + canonical(object)).utf8)))
    }

    /// Keys sorted, no whitespace, slashes unescaped: the same bytes for the same entry everywhere.
    /// (Strings, integers and objects of them always encode; an empty text could never verify.)
    static func canonical(_ object: [String: JSONValue]) -> String {
        (try? JSONValue.object(object).canonicalText) ?? ""
    }

    private static func parse(_ line: String) -> [String: JSONValue]? {
        JSONValue.parse(Array(line.utf8))?.objectValue
    }

    /// RFC 3339 in UTC with milliseconds.
    public static func timestamp(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
