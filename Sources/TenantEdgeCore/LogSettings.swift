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

/// `tracing` in the node's config: spans of the miss path (the L2 read and the upstream fetch),
/// exported over OTLP/HTTP when `otlp_endpoint` is set. Off by default; a hit never makes a span.
public struct TracingSettings: Sendable, Equatable {
    /// The collector's base URL (`http://collector:4318`); spans go to `<endpoint>/v1/traces`.
    public var otlpEndpoint: String? = nil
    public var serviceName: String = "tenantedge-node"
    /// Share of traces kept when the client sent none (a client's sampled flag is followed).
    public var sampleRatio: Double = 1

    public init() {}
}
