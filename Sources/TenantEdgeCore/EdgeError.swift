/// The one error type of TenantEdge: a stable machine code, a message written for operators, and an
/// optional underlying cause. The HTTP status is chosen at the server edge, never here.
///
/// Messages never carry secret material (keys, tokens, plaintext bodies): callers pass names, not values.
public struct EdgeError: Error, Sendable, CustomStringConvertible {
    /// A stable identifier for the kind of failure. A struct over a private enum, so cases can be added
    /// without breaking callers that switch on the ones they know.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case invalidConfig = "invalid_config"
            case unknownTenant = "unknown_tenant"
            case badRequest = "bad_request"
            case unauthorized = "unauthorized"
            case forbidden = "forbidden"
            case decryptFailed = "decrypt_failed"
            case cryptoFailure = "crypto_failure"
            case upstreamUnavailable = "upstream_unavailable"
            case upstreamTimeout = "upstream_timeout"
            case redisFailure = "redis_failure"
            case geoIPFailure = "geoip_failure"
            case transferFailure = "transfer_failure"
            case io = "io"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        public static let invalidConfig = Code(.invalidConfig)
        public static let unknownTenant = Code(.unknownTenant)
        public static let badRequest = Code(.badRequest)
        public static let unauthorized = Code(.unauthorized)
        public static let forbidden = Code(.forbidden)
        public static let decryptFailed = Code(.decryptFailed)
        public static let cryptoFailure = Code(.cryptoFailure)
        public static let upstreamUnavailable = Code(.upstreamUnavailable)
        public static let upstreamTimeout = Code(.upstreamTimeout)
        public static let redisFailure = Code(.redisFailure)
        public static let geoIPFailure = Code(.geoIPFailure)
        public static let transferFailure = Code(.transferFailure)
        public static let io = Code(.io)

        /// The snake_case name used in JSON error bodies and logs.
        public var description: String { value.rawValue }
    }

    public var code: Code
    /// Operator-facing text: what went wrong and, where it helps, what to do.
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(code): \(message) (\(cause))" }
        return "\(code): \(message)"
    }
}
