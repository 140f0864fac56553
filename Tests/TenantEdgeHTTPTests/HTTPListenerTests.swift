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
    /// accepted socket its listener's. Both halves are checked, the second on plain sockets.
    @Test(arguments: [false, true])
    func acceptedConnectionsGetTheListenersNoDelay(reusePort: Bool) async throws {
        let listener = try await HTTPListener.bind(
            address: HostPort(parsing: "127.0.0.1:0")!, group: MultiThreadedEventLoopGroup.singleton, responder: Echo(),
            limits: EdgeConfig.Limits(), reusePort: reusePort)
        for channel in listener.channels {
            #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() == 1)
        }
        await listener.close()
        #expect(try Self.acceptedSocketInheritsNoDelay(), "this kernel does not pass TCP_NODELAY to accepted sockets")
    }

    /// A listening socket with TCP_NODELAY, one connection to it: whether the accepted socket has it.
    static func acceptedSocketInheritsNoDelay() throws -> Bool {
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer {
            close(server)
            close(client)
        }
        var one: Int32 = 1
        guard setsockopt(server, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) == 0
        else { throw Failure("setsockopt") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
                bind(server, raw, length) == 0 && listen(server, 1) == 0 && getsockname(server, raw, &length) == 0
                    && connect(client, raw, length) == 0
            }
        }
        guard bound else { throw Failure("bind, listen or connect") }
        let accepted = accept(server, nil, nil)
        guard accepted >= 0 else { throw Failure("accept") }
        defer { close(accepted) }
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(accepted, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &size) == 0 else {
            throw Failure("getsockopt")
        }
        return value != 0
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ call: String) { description = "\(call) failed: errno \(errno)" }
    }
}
