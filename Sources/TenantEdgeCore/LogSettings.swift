/// `logging` in the node's and the origin's config: one backend for every log line of the daemon.
public struct LogSettings: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// swift-log's stream handler: a timestamp, the level, the message and `key=value` metadata.
        case text
        /// One JSON object per line: `ts`, `level`, `label`, `message` and each metadata field.
        case json
    }

    public enum Level: String, Sendable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public var format: Format = .text
    public var level: Level = .info

    public init() {}
}
