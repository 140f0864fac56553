import Dispatch
import Foundation
import Logging
import Synchronization
import TenantEdgeCore
import TenantEdgeNative

/// `<state_dir>/audit.jsonl`: the node's tamper-evident log of security-relevant events. Lines are chained
/// under a lock, in the order events happen, and written by a serial queue so no event loop waits
/// on the disk. The file is opened `O_APPEND` with mode 0600; details never hold secrets (tokens
/// appear only as a short prefix of their SHA-256).
package final class AuditLog: Sendable {
    package let path: String
    private let chain: Mutex<AuditChain>  // the chain's head; lines are queued while it is held
    private let writer = DispatchQueue(label: "tenantedge.audit")
    private let descriptor: Int32
    private let clock: any CacheClock
    private let logger: Logger

    /// Opens (or creates) the log and continues its chain. A log whose last line is not an audit
    /// entry is a start-up error: appending to it would hide the damage.
    package init(stateDirectory: String, clock: any CacheClock, logger: Logger) throws(EdgeError) {
        path = stateDirectory + "/audit.jsonl"
        do {
            try FileManager.default.createDirectory(
                atPath: stateDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch { throw EdgeError(.io, "state_dir: cannot create \(stateDirectory)") }
        let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let last = existing.split(separator: "\n").last.map(String.init)
        chain = Mutex(try AuditChain(sha256: { OpenSSL.sha256($0) }, continuingAfter: last))
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EdgeError(.io, "state_dir: cannot open \(path) for appending") }
        self.clock = clock
        self.logger = logger
    }

    deinit { close(descriptor) }

    /// Appends one entry. `actor` names who asked (`admin:<token digest prefix>`, `node`, `origin`).
    package func record(_ event: String, actor: String, tenant: String?, details: [String: String] = [:]) {
        let now = clock.now()
        chain.withLock { chain in
            let line = chain.append(event: event, actor: actor, tenant: tenant, details: details, at: now) + "\n"
            writer.async { [descriptor, logger] in
                let written = line.utf8CString.withUnsafeBufferPointer {
                    write(descriptor, $0.baseAddress, $0.count - 1)
                }
                if written != line.utf8.count {
                    logger.error("audit log write failed", metadata: ["path": "\(self.path)"])
                }
            }
        }
    }

    /// Verifies the whole chain as it is on disk (after a flush).
    package func verify() -> AuditChain.Verification {
        flush()
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return AuditChain.verify(text, sha256: { OpenSSL.sha256($0) })
    }

    /// Waits until every recorded entry is written and synced to disk.
    package func flush() {
        writer.sync { _ = fsync(descriptor) }
    }
}
