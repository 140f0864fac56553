import Foundation

/// The figures a fault test measured (requests/s during the fault, failed requests, data lost), as
/// one JSON line per fault in the file `TE_FAULT_REPORT` names. `make test` sets it, and
/// `scripts/reliability-figures.py` writes the lines into docs/reliability.md, so the page shows what
/// the last run measured rather than what someone typed. Without the variable nothing is written:
/// the figures are a report, the tests' own expectations are the verdict.
package enum FaultReport {
    private static let lock = NSLock()

    package static func record(_ fault: String, _ figures: [(String, Double)]) {
        guard let path = ProcessInfo.processInfo.environment["TE_FAULT_REPORT"], !path.isEmpty else { return }
        var object: [String: Any] = ["fault": fault]
        object["figures"] = figures.map { ["name": $0.0, "value": $0.1] }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        lock.lock()
        defer { lock.unlock() }
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644])
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: data + Data("\n".utf8))
    }
}
