import Logging
import NIOHTTP1
import OTel
import ServiceLifecycle
import TenantEdgeCore
import TenantEdgeHTTP
import Tracing

/// Spans of the miss path, when `tracing.otlp_endpoint` is set: one for the L2 read and one for the
/// upstream fetch, both children of the client's trace (its `traceparent`, when valid) and the
/// fetch's context sent upstream in `traceparent`. Exported over OTLP/HTTP by swift-otel's batch
/// processor. Without an endpoint there is no tracer at all: a hit or a miss makes no span.
struct MissTracing: Sendable {
    let tracer: any Tracer

    /// The tracer and the service that exports its spans (run under the node's service group).
    static func make(_ settings: TracingSettings, logger: Logger) throws -> (MissTracing, any Service)? {
        guard let endpoint = settings.otlpEndpoint else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        configuration.propagators = [.traceContext]
        configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: settings.sampleRatio) ?? .parentBasedAlwaysOn
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the traces path is added (an endpoint set
        // here is used as it is).
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        configuration.traces.otlpExporter.endpoint = base + "/v1/traces"
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        return (MissTracing(tracer: tracer), service)
    }

    /// Starts a span under the trace the client's headers carry (or a new trace).
    func start(_ name: String, clientHeaders: RequestFields, kind: SpanKind, tenant: String) -> any Span {
        var parent = ServiceContext.topLevel
        tracer.extract(clientHeaders, into: &parent, using: HeaderExtractor())
        let span = tracer.startSpan(name, context: parent, ofKind: kind)
        span.attributes["tenant"] = tenant
        return span
    }

    /// Ends an L2 read's span: whether Redis answered, and whether it held a value.
    static func endL2(_ span: any Span, answered: Bool, found: Bool) {
        span.attributes["cache.l2.found"] = found
        if !answered { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }

    /// `traceparent` (and `tracestate`) of `span`, to send upstream.
    func inject(_ span: any Span, into headers: inout HTTPHeaders) {
        headers.remove(name: "traceparent")
        headers.remove(name: "tracestate")
        tracer.inject(span.context, into: &headers, using: HeaderInjector())
    }

    private struct HeaderExtractor: Extractor {
        func extract(key: String, from carrier: RequestFields) -> String? {
            // Only a valid W3C traceparent is continued; anything else starts a new trace.
            let values = carrier[key]
            guard values.count == 1, let value = values.first else { return nil }  // several: none valid
            if key == "traceparent" { return RequestCorrelation.TraceParent(value[...]) != nil ? value : nil }
            if key == "tracestate" { return RequestCorrelation.isValidTraceState(value[...]) ? value : nil }
            return nil
        }
    }

    private struct HeaderInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
            carrier.add(name: key, value: value)
        }
    }
}

/// The span of one upstream fetch, ended with its outcome.
struct UpstreamSpan: Sendable {
    let span: any Span

    func finish(_ result: Result<UpstreamResponse, any Error>) {
        switch result {
        case .success(let response):
            span.attributes["http.response.status_code"] = response.status
            if response.status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        case .failure(let error):
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
    }
}
