import Logging
import TenantEdgeCore

/// The daemons' logging: one swift-log backend on stderr, `text` (swift-log's stream handler) or
/// `json` (`JSONLogHandler`), at `logging.level` (default `info`).
public enum DaemonLogging {
    public static func bootstrap(_ settings: LogSettings = LogSettings()) {
        let level = Logger.Level(rawValue: settings.level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in
            switch settings.format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
