import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// The listener's sockets: Nagle off for every connection without setting it per connection.
@Suite("HTTP listener sockets")
struct HTTPListenerTests {
    struct Echo: HTTPResponder {
        var fixedHeaders: FixedHeaderLines { .none }
        func respond(to request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
            .now(EdgeResponse(status: .ok, headers: HTTPHeaders(), body: ByteBuffer(string: request.head.uri)))
        }
    }

    /// The listener no longer sets TCP_NODELAY on each accepted connection (3,500 instructions a
    /// connection through NIO's option path): it sets it on the listening sockets, and Linux gives an
    /// accepted socket its listener's. Checked on the sockets the listener accepted, found among this
    /// process's descriptors by their peer address.
    @Test(arguments: [false, true])
    func acceptedConnectionsHaveNoDelay(reusePort: Bool) async throws {
        let listener = try await HTTPListener.bind(
            address: HostPort(parsing: "127.0.0.1:0")!, group: MultiThreadedEventLoopGroup.singleton, responder: Echo(),
            limits: EdgeConfig.Limits(), reusePort: reusePort)
        var clients: [Int32] = []
        defer { for client in clients { close(client) } }
        for _ in 0..<8 { clients.append(try Self.connect(port: listener.port)) }
        for client in clients {
            var accepted = Self.acceptedSocket(peerOf: client)
            for _ in 0..<500 where accepted == nil {  // until a loop has accepted it
                try await Task.sleep(for: .milliseconds(10))
                accepted = Self.acceptedSocket(peerOf: client)
            }
            let found = try #require(accepted, "no accepted socket for a client")
            #expect(Self.noDelay(found) == true)
        }
        #expect(Self.noDelay(clients[0]) == false, "the check tells the two apart (a client socket has Nagle on)")
        await listener.close()
    }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(fd)
            throw Failure("connect")
        }
        return fd
    }

    /// The descriptor of this process whose peer is `client`'s own address: the listener's side.
    static func acceptedSocket(peerOf client: Int32) -> Int32? {
        guard let ours = address(of: client, peer: false),
            let open = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        else { return nil }
        return open.compactMap { Int32($0) }.first { fd in fd != client && address(of: fd, peer: true) == ours }
    }

    static func address(of fd: Int32, peer: Bool) -> [UInt8]? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                (peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)) == 0
            }
        }
        guard ok, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return withUnsafeBytes(of: address.sin_port) { Array($0) } + withUnsafeBytes(of: address.sin_addr) { Array($0) }
    }

    static func noDelay(_ fd: Int32) -> Bool? {
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &size) == 0 else { return nil }
        return value != 0
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ call: String) { description = "\(call) failed: errno \(errno)" }
    }
}
