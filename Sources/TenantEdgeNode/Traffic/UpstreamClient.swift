import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import TenantEdgeCore
import TenantEdgeHTTP

/// A tenant upstream's answer, body collected.
struct UpstreamResponse: Sendable {
    var status: Int
    var headers: [HeaderField]
    var body: ByteBuffer
}

/// Upstream fetches through async-http-client: pooled keep-alive connections per upstream host,
/// connect and read timeouts, a body limit, no redirect following (a proxy passes redirects on) and
/// no decompression. Results complete on the caller's event loop; nothing here blocks a loop.
final class UpstreamClient: Sendable {
    private let client: HTTPClient
    private let limits: EdgeConfig.Limits

    init(group: any EventLoopGroup, limits: EdgeConfig.Limits) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .milliseconds(Int64(limits.upstreamConnectTimeoutMs)),
                read: .milliseconds(Int64(limits.upstreamReadTimeoutMs))),
            decompression: .disabled)
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: limits.upstreamPoolSize)
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        self.limits = limits
    }

    /// Sends `method target` to `upstream`; fails with `.upstreamTimeout` or `.upstreamUnavailable`.
    /// `target` must be origin-form (the traffic responder's admission made it so); the URL is the
    /// upstream's own scheme, host and port with the target after its base path, and a URL that
    /// would resolve to any other host or port is refused before anything is sent.
    func fetch(
        upstream: UpstreamURL, method: HTTPMethod, target: String, headers: HTTPHeaders, body: ByteBuffer?,
        counters: TenantCounters, trace: RequestTrace? = nil, requestID: String, on eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamResponse> {
        let request: HTTPClient.Request
        do {
            guard target.hasPrefix("/") else { throw EdgeError(.badRequest, "not origin-form") }
            request = try HTTPClient.Request(
                url: upstream.base + target, method: method, headers: headers,
                body: body.map { .byteBuffer($0) })
            let host = request.host.hasPrefix("[") ? String(request.host.dropFirst().dropLast()) : request.host
            guard host.lowercased() == upstream.host.lowercased(), request.port == upstream.port else {
                throw EdgeError(.badRequest, "target would change the upstream host")
            }
        } catch {
            return eventLoop.makeFailedFuture(EdgeError(.badRequest, "request target cannot be sent upstream"))
        }
        let delegate = ResponseAccumulator(request: request, maxBodySize: limits.maxResponseBodyBytes)
        let deadline =
            NIODeadline.now() + .milliseconds(Int64(limits.upstreamConnectTimeoutMs + limits.upstreamReadTimeoutMs))
        let sent = NIODeadline.now()
        return client.execute(
            request: request, delegate: delegate, eventLoop: .delegateAndChannel(on: eventLoop), deadline: deadline
        )
        .futureResult
        .map { response in
            let elapsed = (NIODeadline.now() - sent).nanoseconds
            counters.upstreamDuration.record(nanoseconds: elapsed)
            trace?.recordUpstream(nanoseconds: elapsed, requestID: requestID)
            if response.status.code >= 500 { counters.increment(.status5xx) }
            return UpstreamResponse(
                status: Int(response.status.code),
                headers: response.headers.map { HeaderField($0.name, $0.value) },
                body: response.body ?? ByteBuffer())
        }
        .flatMapErrorThrowing { error in
            let elapsed = (NIODeadline.now() - sent).nanoseconds
            counters.upstreamDuration.record(nanoseconds: elapsed)
            trace?.recordUpstream(nanoseconds: elapsed, requestID: requestID)
            counters.increment(Self.reason(error))
            throw Self.classify(error)
        }
    }

    /// The `reason` label of `edge_upstream_errors_total` for a failed fetch: timed out, refused or
    /// unreachable, or an answer that broke the protocol or the size limit.
    static func reason(_ error: any Error) -> TenantCounters.UpstreamError {
        if error is ResponseAccumulator.ResponseTooBigError || error is HTTPParserError { return .invalidResponse }
        guard let error = error as? HTTPClientError else { return .connect }  // refused, unreachable, TLS
        switch error {
        case .readTimeout, .deadlineExceeded, .connectTimeout, .writeTimeout: return .timeout
        case .remoteConnectionClosed, .bodyLengthMismatch: return .invalidResponse
        default: return .connect
        }
    }

    func shutdown() async throws { try await client.shutdown() }

    static func classify(_ error: any Error) -> EdgeError {
        if let error = error as? HTTPClientError {
            switch error {
            case .readTimeout, .deadlineExceeded, .connectTimeout, .writeTimeout:
                return EdgeError(.upstreamTimeout, "upstream did not answer in time")
            default:
                return EdgeError(.upstreamUnavailable, "upstream request failed: \(error)")
            }
        }
        if error is ResponseAccumulator.ResponseTooBigError {
            return EdgeError(.upstreamUnavailable, "upstream response body exceeds limits.max_response_body_bytes")
        }
        return EdgeError(.upstreamUnavailable, "upstream unreachable: \(error)")
    }
}
