import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A redis-server of a test's own (the Debian package's binary), so the test can kill it by PID
/// and start it again on the same port.
package final class RedisProcess: @unchecked Sendable {  // used from one test task
    package let port: Int
    private var process: Process?
    /// Arguments after the defaults (`--replicaof 127.0.0.1 6379`, say); with `sentinelConfig`, the
    /// process is a sentinel run from that file instead (`redis-server <file> --sentinel`).
    private let extraArguments: [String]
    private let sentinelConfig: String?

    package init(port: Int? = nil, arguments: [String] = [], sentinelConfig: String? = nil) throws {
        self.port = try port ?? RedisProcess.freePort()
        extraArguments = arguments
        self.sentinelConfig = sentinelConfig
        try start()
    }

    package func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        if let sentinelConfig {
            process.arguments = [sentinelConfig, "--sentinel", "--port", String(port)] + extraArguments
        } else {
            // A directory of its own: a replica's full sync writes an RDB file there (into the
            // repository's root before, from the Sentinel tests).
            let directory = try temporaryDirectory("te-redis")
            process.arguments =
                [
                    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel",
                    "warning", "--dir", directory,
                ] + extraArguments
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<100 {
            if (try? RawHTTP.blockingConverse(port: port, "PING\r\n", timeout: 0.2))?.text.contains("PONG") == true {
                return
            }
            usleep(50_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    /// SIGKILL, as a crash would.
    package func kill() {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    deinit { kill() }

    package static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
