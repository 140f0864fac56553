import Foundation
import Logging
import Synchronization
import TenantEdgeCore

/// swift-log lines as JSON, one object per line on stderr: `ts` (RFC 3339, milliseconds), `level`,
/// `label`, `message`, then every metadata field (nested values as JSON). Lines are written whole
/// under a lock so two threads never interleave one; a field named like a fixed one is prefixed
/// `meta_` rather than replacing it. Values are the log call's own: secrets never reach a log call.
package struct JSONLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    package init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var fields: [String: JSONValue] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            let name = ["ts", "level", "label", "message"].contains(key) ? "meta_" + key : key
            fields[name] = Self.json(value)
        }
        fields["ts"] = .string(AuditChain.timestamp(Date().timeIntervalSince1970))
        fields["level"] = .string(event.level.rawValue)
        fields["label"] = .string(label)
        fields["message"] = .string(event.message.description)
        write(((try? JSONValue.object(fields).canonicalText) ?? #"{"message":"unencodable log line"}"#) + "\n")
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let item): .string(item.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let fields): .object(fields.mapValues(json))
        }
    }

    private static let lock = Mutex(())

    package static let standardError: @Sendable (String) -> Void = { line in
        lock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }
}
