import Foundation

/// Prometheus' `promtool` (Debian's `prometheus` package, installed by `make deps`): a missing one
/// fails the test, never skips it.
package enum Promtool {
    package static let path = "/usr/bin/promtool"

    /// Runs `promtool arguments` with `input` on stdin; the exit status and what it printed.
    package static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestEnvironment.Unmet("\(path) is missing: run the suite with `make test` (it installs prometheus)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
