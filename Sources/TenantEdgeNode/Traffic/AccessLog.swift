import Logging
import NIOCore
import TenantEdgeCore
import TenantEdgeHTTP

/// The per-tenant access log: off unless a tenant sets `access_log_sample` (0 to 1), then that
/// share of its requests, one line each through the node's log backend (`text` or `json`), with
/// `log=access` among its fields. A line holds the tenant, method, path (at most 512 characters;
/// the query only as a count of its parameters, since queries carry tokens, signatures and
/// addresses), status, cache status, duration, body bytes, the request id and the client's
/// address; never a header value, a cookie or a body.
struct AccessLog: Sendable {
    static let maxTargetCharacters = 512

    /// How many `&`-separated parameters the target's query has (0 without a query).
    static func parameterCount(_ target: String) -> Int {
        let query = QueryString.split(target: target).query
        return query.isEmpty ? 0 : query.split(separator: "&", omittingEmptySubsequences: true).count
    }
    let logger: Logger
    let requestIDs: RequestIDs

    init(logger base: Logger, requestIDs: RequestIDs) {
        var logger = base
        logger[metadataKey: "log"] = "access"
        self.logger = logger
        self.requestIDs = requestIDs
    }

    func write(
        request: EdgeRequest, response: EdgeResponse, tenant: TenantConfig, trace: RequestTrace,
        elapsedNanoseconds: Int64
    ) {
        guard tenant.accessLogSample > 0, Double.random(in: 0..<1) < tenant.accessLogSample else { return }
        let requestID =
            trace.requestID
            ?? request.head.headers.first(name: "x-request-id").flatMap {
                RequestCorrelation.isValidRequestID($0[...]) ? $0 : nil
            } ?? requestIDs.nextRequestID()
        logger.info(
            "access",
            metadata: [
                "tenant": "\(tenant.id)", "method": "\(request.head.method.rawValue)",
                "path": "\(QueryString.split(target: request.head.uri).path.prefix(Self.maxTargetCharacters))",
                "query_params": "\(Self.parameterCount(request.head.uri))", "status": "\(response.status.code)",
                "cache_status": "\(response.cacheStatus.map { $0.status.headerValue(cacheName: $0.cacheName) } ?? "")",
                "duration_ms": "\(Double(elapsedNanoseconds / 1000) / 1000)",
                "bytes": "\(response.body?.readableBytes ?? 0)", "request_id": "\(requestID)",
                "client": "\(request.peer?.ipAddress ?? "-")",
            ])
    }
}
