import Foundation

/// Prometheus' `promtool` (Debian's `prometheus` package, installed by `make deps`): a missing one
/// fails the test, never skips it.
package enum Promtool {
    package static let path = "/usr/bin/promtool"

    /// Runs `promtool arguments` with `input` on stdin; the exit status and what it printed.
    package static func run(_ arguments: [String], input: String = "") async throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestEnvironment.Unmet("\(path) is missing: run the suite with `make test` (it installs prometheus)")
        }
        return try await ChildProcess.run(path, arguments, input: input)
    }
}
