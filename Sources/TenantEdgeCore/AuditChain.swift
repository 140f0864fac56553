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
        guard let object = Self.parse(lastLine), let seq = object["seq"] as? Int, let hash = object["hash"] as? String else {
            throw EdgeError(.io, "the audit log's last line is not an audit entry")
        }
        self.seq = seq
        prev = hash
    }

    /// The next line (without a newline), and the chain moved past it.
    public mutating func append(event: String, actor: String, tenant: String?, details: [String: String], at: Double) -> String {
        seq += 1
        var object: [String: Any] = ["seq": seq, "at": Self.timestamp(at), "event": event, "actor": actor,
                                     "tenant": tenant ?? "-", "details": details, "prev": prev]
        let hash = Self.hash(of: object, sha256: sha256)
        object["hash"] = hash
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
            guard let hash = object.removeValue(forKey: "hash") as? String else { return .broken(line: number, reason: "no hash") }
            guard object["seq"] as? Int == count + 1 else { return .broken(line: number, reason: "seq is not \(count + 1)") }
            guard object["prev"] as? String == prev else { return .broken(line: number, reason: "prev is not the previous line's hash") }
            guard Self.hash(of: object, sha256: sha256) == hash else { return .broken(line: number, reason: "hash does not match the line") }
            prev = hash
            count += 1
        }
        return .valid(entries: count)
    }

    private static func hash(of object: [String: Any], sha256: SHA256) -> String {
        let prev = object["prev"] as? String ?? ""
        return Hex.encode(sha256(Array((prev + canonical(object)).utf8)))
    }

    /// Keys sorted, no whitespace, slashes unescaped: the same bytes for the same entry everywhere.
    static func canonical(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            preconditionFailure("audit entries hold only strings and integers")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func parse(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// RFC 3339 in UTC with milliseconds.
    public static func timestamp(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
