import Foundation

/// Any JSON document as a typed value: for the bodies whose every field is checked by hand (a
/// purge, a feed answer, an audit line), so no `[String: Any]` and no bridging guesses are needed
/// (a `1` is never read as `true`, nor `true` as `1`). Integers within ±2^63 stay exact; a number
/// Foundation reads as a whole one (`1.0`, `1e3`) counts as an integer; other numbers are `Double`.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses `bytes` as one JSON document; nil when they are not JSON.
    public static func parse(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Keys sorted, no whitespace, slashes unescaped: the same bytes for the same value everywhere.
    public var canonicalText: String {
        get throws(EdgeError) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            do { return String(decoding: try encoder.encode(self), as: UTF8.self) } catch {
                throw EdgeError(.io, "a value could not be encoded as JSON")
            }
        }
    }

    public var objectValue: [String: JSONValue]? { if case .object(let value) = self { value } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let value) = self { value } else { nil } }
    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    public var integerValue: Int? { if case .integer(let value) = self { value } else { nil } }
    public var boolValue: Bool? { if case .bool(let value) = self { value } else { nil } }

    /// An array of strings, or nil when this is anything else (or holds anything else).
    public var stringsValue: [String]? {
        guard case .array(let items) = self else { return nil }
        var strings: [String] = []
        strings.reserveCapacity(items.count)
        for item in items {
            guard case .string(let value) = item else { return nil }
            strings.append(value)
        }
        return strings
    }
}

/// Encoding of `Codable` state for disk and the wire: sorted keys and unescaped slashes, so the
/// same value always gives the same bytes; throws instead of producing something empty.
public enum StableJSON {
    public static func encode<Value: Encodable>(_ value: Value, what: String) throws(EdgeError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(value)) } catch {
            throw EdgeError(.io, "\(what) could not be encoded; nothing written")
        }
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], what: String) throws(EdgeError)
        -> Value
    {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw EdgeError(.io, "\(what) is not readable: \(Self.describe(error))")
        }
    }

    /// The decoding error's path and problem, without the document's contents.
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not JSON" }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not JSON of the expected shape" : "'\(path)' has the wrong type"
        @unknown default: return "not JSON of the expected shape"
        }
    }
}
