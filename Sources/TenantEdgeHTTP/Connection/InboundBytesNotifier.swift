import NIOCore

/// Sits before the request decoder and tells `HTTPConnectionHandler` that bytes arrived. The decoder
/// says nothing until a request head is complete, so without this a client sending half a head
/// would never be timed out (`limits.header_timeout_ms`).
///
/// It calls the handler directly rather than firing a user event through the decoder: an event
/// costs two dynamic casts a read (the decoder's and the handler's), about 1,000 instructions of a
/// 53,000-instruction hit (`make bench-instructions`).
package final class InboundBytesNotifier: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let connection: HTTPConnectionHandler

    /// `connection`: the handler of the same channel, later in the pipeline.
    package init(notifying connection: HTTPConnectionHandler) {
        self.connection = connection
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.bytesArrived()
        context.fireChannelRead(data)
    }
}
