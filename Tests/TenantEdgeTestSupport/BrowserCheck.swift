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
    package static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            throw TestEnvironment.Unmet("/usr/bin/chromium is missing: run the suite with `make test`")
        }
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        return try await ChildProcess.run(
            "/usr/bin/env",
            ["python3", repository.appendingPathComponent("Tests/browser/dashboard_check.py").path] + arguments)
    }
}
