import NIOCore

/// Sits before the request decoder and tells `HTTPConnectionHandler` that bytes arrived. The decoder
/// says nothing until a request head is complete, so without this a client sending half a head
/// would never be timed out (`limits.header_timeout_ms`).
package final class InboundBytesNotifier: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    /// The event fired before each read's bytes go on to the decoder.
    package struct BytesArrived: Sendable {}

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireUserInboundEventTriggered(BytesArrived())
        context.fireChannelRead(data)
    }
}
