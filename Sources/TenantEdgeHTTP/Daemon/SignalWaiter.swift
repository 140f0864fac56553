import Dispatch
import Foundation
import Logging

/// Waits for SIGTERM or SIGINT through Dispatch signal sources (the default handlers are ignored
/// first, so the process drains instead of dying).
public enum SignalWaiter {
    public static func waitForTermination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queue = DispatchQueue(label: "tenantedge.signals")
            let once = OnceFlag()
            var sources: [any DispatchSourceSignal] = []
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler {
                    if once.claim() { continuation.resume() }
                }
                source.resume()
                sources.append(source)
            }
            SourceKeeper.keep(sources)
        }
    }
}

package extension SignalWaiter {
    /// Runs `handler` on every SIGHUP (the default action, terminating, is ignored from now on).
    public static func onHangUp(_ handler: @escaping @Sendable () -> Void) {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "tenantedge.sighup"))
        source.setEventHandler(handler: handler)
        source.resume()
        SourceKeeper.keep([source])
    }
}

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

/// Keeps the signal sources alive for the life of the process.
private enum SourceKeeper {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []  // appended at start, on the main task, before any signal
    static func keep(_ value: [any DispatchSourceSignal]) { sources += value }
}

private final class OnceFlag: @unchecked Sendable {  // guarded by the serial signal queue
    private var claimed = false
    func claim() -> Bool {
        if claimed { return false }
        claimed = true
        return true
    }
}
