import Foundation
import Logging
import NIOCore
import Synchronization
import TenantEdgeCore
import TenantEdgeHTTP

/// The origin's durable invalidation log: `<state_dir>/invalidations.jsonl`, one event a line.
/// `append` writes and fsyncs the line before the event is visible or acknowledged, so a `{"seq":N}`
/// answer survives a crash, and a restart continues from the same sequence. The file is compacted
/// to the retained window when it grows to twice the window.
///
/// Long polls wait here: `wait(after:)` completes as soon as an event after the cursor exists.
final class InvalidationLog: Sendable {
    let path: String
    private let state: Mutex<State>
    private let clock: any CacheClock

    private struct State {
        var window: InvalidationWindow
        var descriptor: Int32
        var linesInFile: Int
        var waiters: [(after: Int, promise: EventLoopPromise<Void>)] = []
    }

    private let logger: Logger

    init(
        stateDirectory: String, retention: Int, clock: any CacheClock,
        logger: Logger = Logger(label: "tenantedge.origin")
    ) throws(EdgeError) {
        self.logger = logger
        path = stateDirectory + "/invalidations.jsonl"
        self.clock = clock
        do { try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true) } catch
        {
            throw EdgeError(.io, "state_dir: cannot create \(stateDirectory)")
        }
        var window = InvalidationWindow(retention: retention)
        var lines = 0
        if var data = FileManager.default.contents(atPath: path) {
            // A last line without its newline was cut by a crash during its append: it was never
            // acknowledged (that waits for the fsync), so it is dropped and the file cut back.
            let complete =
                (data.lastIndex(of: UInt8(ascii: "\n")).map { data.distance(from: data.startIndex, to: $0) + 1 }) ?? 0
            if complete < data.count {
                guard truncate(path, off_t(complete)) == 0 else {
                    throw EdgeError(.io, "\(path): cannot cut off a torn last line")
                }
                data = data.prefix(complete)
            }
            for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
                guard let json = JSONValue.parse(Array(line)), let event = try? InvalidationEvent(json: json),
                    event.seq == window.head + 1 || window.head == 0
                else {
                    throw EdgeError(.io, "\(path):\(index + 1): not an invalidation event following the previous one")
                }
                if window.head == 0 && event.seq > 1 {
                    window = InvalidationWindow(retention: retention, startingAfter: event.seq - 1)
                }
                window.append(event, encodedBytes: line.count + 16)
                lines += 1
            }
        }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EdgeError(.io, "state_dir: cannot open \(path)") }
        state = Mutex(State(window: window, descriptor: descriptor, linesInFile: lines))
    }

    deinit { state.withLock { if $0.descriptor >= 0 { close($0.descriptor) } } }

    var head: Int { state.withLock { $0.window.head } }

    /// Makes a purge durable and visible; its event. Blocks on fsync: call it off the event loops.
    func append(_ purge: PurgeRequest) throws(EdgeError) -> InvalidationEvent {
        let (event, waiters) = try state.withLock {
            state throws(EdgeError) -> (InvalidationEvent, [EventLoopPromise<Void>]) in
            let event = InvalidationEvent(
                seq: state.window.head + 1, purge: purge, publishedAt: AuditChain.timestamp(clock.now()))
            let line = Array(try Self.line(event).utf8) + [UInt8(ascii: "\n")]
            if state.descriptor < 0 { state.descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0o600) }
            guard state.descriptor >= 0 else { throw EdgeError(.io, "cannot open \(path)") }
            let before = lseek(state.descriptor, 0, SEEK_END)
            let written = line.withUnsafeBytes { write(state.descriptor, $0.baseAddress, $0.count) }
            guard written == line.count, fsync(state.descriptor) == 0 else {
                // Nothing half-written stays behind for the next append to follow.
                if before >= 0 { _ = ftruncate(state.descriptor, before) }
                throw EdgeError(.io, "cannot append to \(path)")
            }
            state.window.append(event, encodedBytes: line.count + 16)  // + the feed answer's framing
            state.linesInFile += 1
            let ready = state.waiters.filter { $0.after < event.seq }.map(\.promise)
            state.waiters.removeAll { $0.after < event.seq }
            // The event is durable: a compaction that fails is retried on a later append, never
            // reported as a failed publish (which the publisher would repeat).
            if state.linesInFile >= 2 * state.window.retention {
                do throws(EdgeError) { try compact(&state) } catch {
                    logger.warning(
                        "invalidation log compaction failed; kept as it is", metadata: ["error": "\(error.message)"])
                }
            }
            return (event, ready)
        }
        for waiter in waiters { waiter.succeed() }
        return event
    }

    /// The newest retained event of each tenant (compliance report).
    func lastEvents() -> [String: InvalidationEvent] {
        state.withLock { state in
            guard
                case .events(let events, _) = state.window.read(
                    after: state.window.oldest - 1, limit: state.window.retention)
            else { return [:] }
            var last: [String: InvalidationEvent] = [:]
            for event in events { last[event.purge.tenant] = event }
            return last
        }
    }

    func read(after cursor: Int, limit: Int, maxBytes: Int = .max) -> InvalidationWindow.Read {
        state.withLock { $0.window.read(after: cursor, limit: limit, maxBytes: maxBytes) }
    }

    /// Completes when an event after `cursor` exists, or after `seconds`, whichever is first.
    func wait(after cursor: Int, seconds: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let ready = state.withLock { state -> Bool in
            if state.window.head > cursor { return true }
            state.waiters.append((cursor, promise))
            return false
        }
        if ready { return eventLoop.makeSucceededFuture(()) }
        eventLoop.scheduleTask(in: .seconds(Int64(seconds))) {
            // Only a waiter still registered is completed here; `append` completes the others.
            let stillWaiting = self.state.withLock { state -> Bool in
                let before = state.waiters.count
                state.waiters.removeAll { $0.promise.futureResult === promise.futureResult }
                return state.waiters.count < before
            }
            if stillWaiting { promise.succeed() }
        }
        return promise.futureResult
    }

    /// Answers every waiting long poll now (with what there is), so a stopping origin does not hold
    /// connections open until their waits run out.
    func releaseWaiters() {
        let waiters = state.withLock { state in
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.promise)
        }
        for waiter in waiters { waiter.succeed() }
    }

    /// Rewrites the file with the retained window only (write, fsync, rename).
    private func compact(_ state: inout State) throws(EdgeError) {
        guard
            case .events(let kept, _) = state.window.read(after: state.window.oldest - 1, limit: state.window.retention)
        else { return }
        var text = ""
        for event in kept { text += try Self.line(event) + "\n" }
        try DurableFile.write(Array(text.utf8), to: path)
        let reopened = open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
        close(state.descriptor)  // its file was replaced: nothing more may go to it
        state.descriptor = reopened  // -1 when it failed: the next append opens the file again
        guard reopened >= 0 else { throw EdgeError(.io, "cannot reopen \(path)") }
        state.linesInFile = kept.count
    }

    /// The event as one JSON line; an event that does not encode is never written or acknowledged.
    static func line(_ event: InvalidationEvent) throws(EdgeError) -> String {
        try event.json.canonicalText
    }
}
