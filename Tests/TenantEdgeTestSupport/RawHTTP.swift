import Foundation
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Sends raw bytes over a plain TCP socket and reads until the server closes or `timeout` passes.
/// For the connection-level tests (pipelining, malformed requests) that an HTTP client would refuse to send.
///
/// The socket calls block (up to `timeout` when the server keeps the connection open), so they run
/// on threads of their own: blocking one of the test pool's two threads for seconds starved other
/// tests' tasks (a store's deadline fired in an unrelated suite).
package enum RawHTTP {
    /// Threads for the blocking exchanges: tests that hold several connections at once get them.
    private static let threads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    package static func exchange(port: Int, _ text: String, timeout: Double = 3) async throws -> String {
        try await converse(port: port, text, timeout: timeout).text
    }

    /// What the server sent, and whether it closed the connection itself (end of stream or a reset)
    /// rather than the test giving up at `timeout`: the node's own timers closed it, whenever that was.
    package static func converse(port: Int, _ text: String, timeout: Double = 3) async throws -> (
        text: String, closedByServer: Bool
    ) {
        try await threads.runIfActive { try blockingConverse(port: port, text, timeout: timeout) }
    }

    /// `converse` on the calling thread, for a caller that is not async (a process's start-up wait).
    package static func blockingConverse(port: Int, _ text: String, timeout: Double = 3) throws -> (
        text: String, closedByServer: Bool
    ) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        var closed = false
        while Date() < deadline {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 {
                closed = true
                break
            }
            if count > 0 { received.append(contentsOf: buffer[0..<count]) }
            if count < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR {  // reset: the server is done
                closed = true
                break
            }
        }
        return (String(decoding: received, as: UTF8.self), closed)
    }

    /// Whether the server still accepts a connection on `port`.
    package static func accepts(port: Int) -> Bool { (try? blockingConverse(port: port, "", timeout: 0.2)) != nil }
}
