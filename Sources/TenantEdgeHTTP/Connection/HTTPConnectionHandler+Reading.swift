import NIOCore

/// The connection reads its requests itself: the bytes of each read go straight to the strict
/// decoder and its parts straight to `received`. Two handlers in front of this one used to do it
/// (one to report that bytes arrived, for the header timeout, and NIO's `ByteToMessageHandler`
/// running the decoder), and each part crossed the pipeline as `NIOAny` to be cast back: about
/// 3,900 of an L1 hit's 46,400 instructions went to those hops (docs/decisions.md #77).
extension HTTPConnectionHandler {
    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        bytesArrived(context: context)
        guard !refusedInput else { return }  // after a refusal, what the client sends is dropped
        if var held = unread {
            unread = nil  // `held` is then the storage's only owner, and grows in place
            held.writeImmutableBuffer(bytes)
            unread = held
        } else {
            unread = bytes
        }
        // A read delivered while parts are handed on (a TLS handler releasing what it held when
        // asked to read) only adds its bytes: the loop below, further up the stack, decodes them.
        guard !decoding else { return }
        decodeUnread(context: context)
    }

    /// Decodes what was read, in order, until the decoder needs more bytes or refuses.
    private func decodeUnread(context: ChannelHandlerContext) {
        decoding = true
        defer { decoding = false }
        let allocator = context.channel.allocator
        while var buffer = unread {
            unread = nil
            // A copy, put back after the loop: `received` may run code that reads again, and the
            // decoder must not be borrowed across that.
            var reader = decoder
            do {
                while buffer.readableBytes > 0,
                    try reader.decode(&buffer, allocator: allocator, emit: { received($0, context: context) })
                        == .continue
                {}
            } catch {
                decoder = reader
                refusedInput = true
                errorCaught(context: context, error: error)
                return
            }
            decoder = reader
            guard var arrived = unread else {
                if buffer.readableBytes > 0 {
                    buffer.discardReadBytesIfLarge()
                    unread = buffer
                }
                return
            }
            // Bytes that arrived meanwhile go behind what is left of this read.
            unread = nil
            buffer.writeBuffer(&arrived)
            unread = buffer
        }
    }
}

extension ByteBuffer {
    /// Drops the bytes already read when they are most of a large buffer, as `ByteToMessageHandler`
    /// reclaims them: a partial request behind many read ones keeps only its own bytes.
    fileprivate mutating func discardReadBytesIfLarge() {
        if readerIndex > 4096, readerIndex > readableBytes { discardReadBytes() }
    }
}
