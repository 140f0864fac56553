import Foundation

/// Runs a program the test needs (promtool, python3, a browser check) to its end without holding a
/// thread of the test's pool while it runs: on 2 cores that pool has two threads, and a test that
/// blocked one for seconds starved every other test's tasks (a store's deadline timer among them).
package enum ChildProcess {
    /// `executable arguments`, `input` on stdin; the exit status and what it printed (both streams).
    package static func run(_ executable: String, _ arguments: [String], input: String = "") async throws -> (
        status: Int32, output: String
    ) {
        let directory = FileManager.default.temporaryDirectory
        let inputFile = directory.appendingPathComponent("te-child-in-\(UUID().uuidString)")
        let outputFile = directory.appendingPathComponent("te-child-out-\(UUID().uuidString)")
        try Data(input.utf8).write(to: inputFile)
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: inputFile)
            try? FileManager.default.removeItem(at: outputFile)
        }
        let stdin = try FileHandle(forReadingFrom: inputFile)
        let stdout = try FileHandle(forWritingTo: outputFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try stdin.close()
        try stdout.close()
        return (status, (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "")
    }
}
