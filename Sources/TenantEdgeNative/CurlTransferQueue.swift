import Dispatch
import Synchronization
import TenantEdgeCore

/// libcurl's easy interface blocks for the whole transfer (a feed long poll lasts up to half a
/// minute). This adapter runs its transfers one at a time on a serial queue of its own, so async
/// callers never block a thread of Swift's cooperative pool, and a cancelled task aborts its
/// transfer at libcurl's next progress callback.
public final class CurlTransferQueue: Sendable {
    private let queue: DispatchQueue
    private let handle: Handle

    public init(label: String) throws(EdgeError) {
        handle = Handle(client: try CurlClient())
        queue = DispatchQueue(label: "tenantedge.curl.\(label)")
    }

    /// Performs one request (see `CurlClient.request`); throws `CancellationError` mapped to
    /// `.transferFailure` when the task was cancelled before or during the transfer.
    public func request(
        _ method: String, _ url: String, body: [UInt8]? = nil, caFile: String?, headers: [String] = [],
        timeoutMs: Int = 5000, maxBodyBytes: Int = 16 << 20
    ) async throws(EdgeError) -> CurlClient.Response {
        let cancelled = Cancelled()
        let result: Result<CurlClient.Response, EdgeError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                queue.async { [handle] in
                    guard !cancelled.isSet else {
                        return continuation.resume(returning: .failure(EdgeError(.transferFailure, "cancelled")))
                    }
                    do throws(EdgeError) {
                        let response = try handle.client.request(
                            method, url, body: body, caFile: caFile, headers: headers, timeoutMs: timeoutMs,
                            maxBodyBytes: maxBodyBytes, shouldAbort: { cancelled.isSet })
                        continuation.resume(returning: .success(response))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
        } onCancel: {
            cancelled.set()
        }
        return try result.get()
    }

    /// The easy handle, used only on `queue`, one transfer at a time.
    private final class Handle: @unchecked Sendable {
        let client: CurlClient
        init(client: CurlClient) { self.client = client }
    }

    private final class Cancelled: Sendable {
        private let flag = Atomic<Bool>(false)
        var isSet: Bool { flag.load(ordering: .acquiring) }
        func set() { flag.store(true, ordering: .releasing) }
    }
}
