import Foundation

/// `Tests/browser/dashboard_check.py`: a dashboard loaded in headless Chromium (Debian's, driven by
/// Playwright for Python, both installed by `make deps`). Screenshots go to
/// `.build/dashboard-screenshots`.
package enum BrowserCheck {
    package static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    package static var screenshots: String { repository.appendingPathComponent(".build/dashboard-screenshots").path }

    /// Runs the check with `arguments` (after the script); its exit status and what it printed.
    /// Waits without holding a thread of the test's pool: the node and its traffic keep running.
    package static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            throw TestEnvironment.Unmet("/usr/bin/chromium is missing: run the suite with `make test`")
        }
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("te-browser-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", repository.appendingPathComponent("Tests/browser/dashboard_check.py").path] + arguments
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try handle.close()
        return (status, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }
}
