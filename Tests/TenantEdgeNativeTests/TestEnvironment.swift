import Foundation
import Testing

/// Addresses of the real servers `make test` started (Tests/support/test-env.sh). A missing one is
/// a failed test, never a skip: run the suite through `make test`.
enum TestEnvironment {
    static func require(_ name: String) throws -> String {
        let value = ProcessInfo.processInfo.environment[name] ?? ""
        try #require(
            !value.isEmpty, "\(name) is not set: run the suite with `make test`, which starts the test servers")
        return value
    }
}
