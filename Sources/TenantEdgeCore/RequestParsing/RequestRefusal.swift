/// Why a request was refused while its bytes were read, before any responder saw it: the status and
/// JSON code the connection answers with and a detail for the operator. The detail names the rule,
/// never the request's own bytes, so nothing a client sent is echoed or logged.
package struct RequestRefusal: Error, Equatable, Sendable {
    package enum Reason: Sendable, CaseIterable {
        case malformedRequestLine, unknownMethod, connectNotServed, invalidTarget, unsupportedVersion
        case bareLineFeed, bareCarriageReturn, obsoleteLineFolding, invalidFieldName, invalidFieldValue
        case headTooLarge, targetTooLong, tooManyFields, missingHost, duplicateHost
        case invalidContentLength, duplicateContentLength, lengthWithTransferEncoding
        case unsupportedTransferCoding, transferEncodingInHTTP10, malformedChunk, framingFieldInTrailers
    }

    package let reason: Reason

    package init(_ reason: Reason) { self.reason = reason }

    /// The response status (RFC 9110 15.5/15.6 and RFC 9112 where it names one).
    package var status: Int {
        switch reason {
        case .unknownMethod, .unsupportedTransferCoding: 501
        case .connectNotServed: 405
        case .unsupportedVersion: 505
        case .headTooLarge, .tooManyFields: 431
        case .targetTooLong: 414
        default: 400
        }
    }

    /// The `error` field of the JSON body.
    package var code: String {
        switch status {
        case 501: "not_implemented"
        case 405: "method_not_allowed"
        case 505: "http_version_not_supported"
        case 431: "request_header_fields_too_large"
        case 414: "uri_too_long"
        default: "bad_request"
        }
    }

    /// The `detail` field: the rule the request broke.
    package var detail: String {
        switch reason {
        case .malformedRequestLine: "the request line is not `method SP target SP HTTP/1.x`"
        case .unknownMethod: "the method is not one this server implements"
        case .connectNotServed: "CONNECT is not served"
        case .invalidTarget: "the request target is not in origin, absolute or asterisk form"
        case .unsupportedVersion: "only HTTP/1.0 and HTTP/1.1 are served"
        case .bareLineFeed: "a line ends in LF without CR"
        case .bareCarriageReturn: "a CR is not followed by LF"
        case .obsoleteLineFolding: "a header line is folded (obs-fold)"
        case .invalidFieldName: "a header name is empty or not a token"
        case .invalidFieldValue: "a header value holds a control character"
        case .headTooLarge: "the request head is larger than limits.max_header_bytes"
        case .targetTooLong: "the request line is longer than limits.max_header_bytes"
        case .tooManyFields: "the request has too many header lines"
        case .missingHost: "an HTTP/1.1 request needs a Host header"
        case .duplicateHost: "more than one Host header"
        case .invalidContentLength: "Content-Length is not a decimal length"
        case .duplicateContentLength: "more than one Content-Length"
        case .lengthWithTransferEncoding: "Content-Length and Transfer-Encoding together"
        case .unsupportedTransferCoding: "the only transfer coding served is chunked, once"
        case .transferEncodingInHTTP10: "Transfer-Encoding in an HTTP/1.0 request"
        case .malformedChunk: "the chunked body is malformed"
        case .framingFieldInTrailers: "Content-Length, Transfer-Encoding or Host in a chunked body's trailers"
        }
    }
}
