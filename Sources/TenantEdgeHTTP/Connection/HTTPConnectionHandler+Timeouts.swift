import NIOCore

/// The connection's timers: the header and idle deadlines, a peer that stops taking a response, the
/// close of a connection whose last response is leaving, and the linger after a refused upload. All
/// run on the one `MovingDeadline` of the connection (the linger aside), on its event loop.
extension HTTPConnectionHandler {
    /// The last response of a closing connection must still leave: a peer that stops taking it is
    /// closed after `idle_timeout_s` without progress, as a keep-alive one is. On the connection's
    /// deadline, whose task is usually still pending from the request: a task scheduled per closing
    /// connection, and its cancel, cost about 5,000 instructions (`make bench-instructions`, `CLOSE=1`).
    func watchClosingWrite(context: ChannelHandlerContext) {
        // A write that failed in the flush just before closed the channel, and `channelInactive`
        // has let go of the deadline's callback: setting it again would keep this handler (and its
        // context) alive for good, through the callback, on every such connection.
        guard context.channel.isActive else { return }
        bufferedAtArm = Self.buffered(context)
        timerKind = .closing
        setExpiry(context: context)
        deadline.move(after: idleTimeout, on: context.eventLoop)
    }

    /// Drops what still arrives after a refused upload, for `lingerTime` at most.
    func linger(context: ChannelHandlerContext) {
        machine.startLingering()
        deadline.stop()
        closingTask?.cancel()
        closingTask = context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) {
            context.close(promise: nil)
        }
        timerKind = .linger
        context.read()
    }

    func arm(_ kind: TimerKind, context: ChannelHandlerContext) {
        guard !machine.closed, !machine.lingering else { return }
        timerKind = kind
        if kind == .write { bufferedAtArm = Self.buffered(context) }
        setExpiry(context: context)
        deadline.move(after: kind == .header ? headerTimeout : idleTimeout, on: context.eventLoop)
    }

    /// What the deadline runs when it passes: set once per connection; `channelInactive` lets it go.
    func setExpiry(context: ChannelHandlerContext) {
        guard deadline.expired == nil else { return }
        deadline.expired = { [self] in
            guard !machine.lingering, let kind = timerKind, kind == .closing || !machine.closed else { return }
            timedOut(kind, context: context)
        }
    }

    /// No request on its way: the connection waits for the next one (idle), not for the rest of one.
    var waitingForRequest: Bool { machine.current == nil && !machine.partialRequest }

    /// Nothing to wait for (a response is being made).
    func cancelTimer() {
        timerKind = nil
        deadline.clear()
    }

    static func buffered(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    /// An idle or stalled connection closes quietly; one in the middle of a request is told `408` first.
    func timedOut(_ kind: TimerKind, context: ChannelHandlerContext) {
        if kind == .closing {
            let left = Self.buffered(context)
            guard left > 0, context.channel.isActive else { return }  // written: the close is on its way
            if bufferedAtArm - left >= min(Self.minimumProgress, bufferedAtArm) {
                watchClosingWrite(context: context)  // slow, but reading
            } else {
                context.close(promise: nil)
            }
            return
        }
        guard !machine.closed, kind == .write || !machine.busy else { return }
        if kind == .idle, Self.buffered(context) > 0 {
            arm(.write, context: context)  // not idle: the last response is still leaving, slowly
            return
        }
        if kind == .write {
            let left = Self.buffered(context)
            if left == 0 {  // all written meanwhile: the connection is merely idle now
                arm(waitingForRequest ? .idle : .header, context: context)
                return
            }
            if bufferedAtArm - left >= min(Self.minimumProgress, bufferedAtArm) {
                arm(.write, context: context)  // the peer is reading, slowly: another period
                return
            }
        }
        machine.markClosed()
        guard kind == .header, !waitingForRequest else {
            context.close(promise: nil)
            return
        }
        write(
            status: .requestTimeout, code: "request_timeout", detail: "the request did not arrive in time",
            context: context)
    }
}
