/// Request ids and W3C trace context, read from a client's request and passed to the upstream.
///
/// Both come from outside, go into the node's log lines and on to the upstream, so they are checked
/// strictly: a request id is 1 to 128 characters from a small safe set (no spaces, quotes, control
/// bytes or anything a log viewer or a header could take as structure); a `traceparent` must be
/// exactly what W3C Trace Context level 1 allows. Anything else is replaced, never repaired.
public enum RequestCorrelation {
    public static let maxRequestIDLength = 128
    public static let maxTraceStateLength = 512

    /// Whether `text` may be used as a request id as it is.
    public static func isValidRequestID(_ text: Substring) -> Bool {
        let bytes = text.utf8
        guard (1...maxRequestIDLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "@"),
                UInt8(ascii: "/"), UInt8(ascii: "+"), UInt8(ascii: "="):
                true
            default: false
            }
        }
    }

    /// `tracestate` passed on only when it is printable ASCII within 512 bytes (the upstream
    /// parses it; we only bound it).
    public static func isValidTraceState(_ text: Substring) -> Bool {
        let bytes = text.utf8
        return (1...maxTraceStateLength).contains(bytes.count) && bytes.allSatisfy { (0x20...0x7E).contains($0) }
    }

    /// A `traceparent` header: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
    public struct TraceParent: Sendable, Equatable {
        /// Lowercase hex, 32 characters, not all zeros.
        public var traceID: String
        /// Lowercase hex, 16 characters, not all zeros.
        public var parentID: String
        public var flags: String

        /// Nil unless `text` is a valid `traceparent` of version 00, or of a later version read as
        /// 00 (its first four fields, followed by nothing or a `-`), as the specification asks.
        public init?(_ text: Substring) {
            let bytes = Array(text.utf8)
            guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
                bytes[52] == UInt8(ascii: "-")
            else { return nil }
            func hex(_ range: Range<Int>) -> String? {
                let slice = bytes[range]
                guard
                    slice.allSatisfy({
                        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
                    })
                else { return nil }
                return String(decoding: slice, as: UTF8.self)
            }
            guard let version = hex(0..<2), version != "ff", let trace = hex(3..<35), let parent = hex(36..<52),
                let flagText = hex(53..<55)
            else { return nil }
            if version == "00" {
                guard bytes.count == 55 else { return nil }
            } else if bytes.count > 55 && bytes[55] != UInt8(ascii: "-") {
                return nil
            }
            guard trace != String(repeating: "0", count: 32), parent != String(repeating: "0", count: 16) else {
                return nil
            }
            (self.traceID, self.parentID, self.flags) = (trace, parent, flagText)
        }

        public init(traceID: String, parentID: String, flags: String) {
            self.traceID = traceID
            self.parentID = parentID
            self.flags = flags
        }

        /// The header value, version 00.
        public var header: String { "00-\(traceID)-\(parentID)-\(flags)" }
    }
}
