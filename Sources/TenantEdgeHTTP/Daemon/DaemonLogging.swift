import Logging

/// The daemons' logging: swift-log to stderr at `info`.
public enum DaemonLogging {
    public static func bootstrap() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
    }
}
