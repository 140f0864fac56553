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
        // After a refusal the client's bytes are dropped. After a close they are still decoded, and
        // the state machine ignores them: a refused upload's connection lingers once its answer is
        // written, and must then find the body's end where the client put it.
        guard !refusedInput else { return }
        if var held = unread {
            unread = nil
            held.writeImmutableBuffer(bytes)  // copies when the read's storage is shared (NIO's pool keeps it)
            unread = held
        } else {
            unread = bytes
        }
        // A read delivered while parts are handed on only adds its bytes: the loop below, further up
        // the stack, decodes them after what is left. No handler on the listener's pipeline does
        // that today (NIOSSL passes its bytes on from `channelReadComplete`); a handler in front that
        // answered a flush or a read with a read would.
        guard !decoding else { return }
        decodeUnread(context: context)
    }

    /// Decodes what was read, in order, until the decoder needs more bytes or refuses.
    private func decodeUnread(context: ChannelHandlerContext) {
        decoding = true
        defer { decoding = false }
        while var buffer = unread {
            unread = nil
            // A copy, put back after the loop: `received` may run code that reads again, and the
            // decoder must not be borrowed across that.
            var reader = decoder
            do {
                while buffer.readableBytes > 0,
                    try reader.decode(&buffer, emit: { received($0, context: context) })
                        == .continue
                {}
            } catch {
                decoder = reader
                refusedInput = true
                unread = nil
                errorCaught(context: context, error: error)
                return
            }
            decoder = reader
            // A part handled may have closed the connection (a forced close written at once), and
            // `channelInactive` let go of what was unread: nothing is kept for a closed channel.
            guard context.channel.isActive else {
                unread = nil
                return
            }
            guard var arrived = unread else {
                if buffer.readableBytes > 0 { unread = buffer.compacted(slack: StrictRequestDecoder.sharedSlackBytes) }
                return
            }
            // Bytes that arrived meanwhile go behind what is left of this read.
            unread = nil
            buffer.writeBuffer(&arrived)
            unread = buffer
        }
    }

    /// Bytes read and not yet decoded, as they are kept (for tests).
    var unreadHeldBytes: Int { unread?.storageCapacity ?? 0 }
}
