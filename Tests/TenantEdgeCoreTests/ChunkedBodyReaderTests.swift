import Testing

@testable import TenantEdgeCore

/// The chunked body reader's rules, and its bounds on what a client may send as framing.
@Suite("Chunked request bodies (RFC 9112 7.1)")
struct ChunkedBodyReaderTests {
    enum Outcome: Equatable {
        case body(String, trailerLines: Int, left: String)
        case refused(RequestRefusal.Reason)
        case incomplete(String)
    }

    /// Runs the reader over `text` as one read and collects the body.
    static func read(_ text: String) -> Outcome {
        var bytes = Array(text.utf8)[...]
        var reader = ChunkedBodyReader(maxTrailerBytes: 1024)
        var body: [UInt8] = []
        while true {
            let step = Array(bytes).withUnsafeBytes { reader.next($0) }
            switch step {
            case .failure(let refusal): return .refused(refusal.reason)
            case .success(.needMore): return .incomplete(String(decoding: body, as: UTF8.self))
            case .success(.data(let count)):
                body += bytes.prefix(count)
                bytes = bytes.dropFirst(count)
            case .success(.framing(let count)):
                bytes = bytes.dropFirst(count)
            case .success(.end(let end, let lines)):
                return .body(
                    String(decoding: body, as: UTF8.self), trailerLines: lines,
                    left: String(decoding: bytes.dropFirst(end), as: UTF8.self))
            }
        }
    }

    @Test func chunksExtensionsAndTrailers() {
        #expect(Self.read("5\r\nhello\r\n0\r\n\r\nNEXT") == .body("hello", trailerLines: 0, left: "NEXT"))
        #expect(
            Self.read("3;a=b;c\r\nabc\r\nA\r\n0123456789\r\n000\r\nX-T: 1\r\n\r\n")
                == .body("abc0123456789", trailerLines: 1, left: ""))
        #expect(Self.read("5\r\nhel") == .incomplete("hel"))
        #expect(Self.read("5\r\nhello\r") == .incomplete("hello"))
    }

    @Test(arguments: [
        "5 \r\nhello\r\n0\r\n\r\n", "G\r\n", "\r\nhello\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n",
        "5\r\nhello\r\n0\r\nX: a\nb\r\n\r\n", "1000000000000000\r\n", "5;\r\nhello\r\n", "5;a=\"b\"\r\nhello\r\n",
        "5;a b\r\nhello\r\n", "-5\r\n", "0x5\r\nhello\r\n",
    ])
    func malformedFramingIsRefused(_ text: String) {
        guard case .refused = Self.read(text) else {
            Issue.record("\(text.debugDescription) was not refused: \(Self.read(text))")
            return
        }
    }

    @Test func fieldsThatFrameARequestAreRefusedInTrailers() {
        func trailers(_ text: String) -> Result<Int, RequestRefusal> {
            Array(text.utf8).withUnsafeBytes { RequestHeadParser.parseTrailerFields($0, end: $0.count) { _, _ in } }
        }
        for field in ["Content-Length: 5", "transfer-encoding: chunked", "HOST: b"] {
            #expect(trailers("X-T: 1\r\n\(field)\r\n\r\n") == .failure(.init(.framingFieldInTrailers)), "\(field)")
        }
        #expect(trailers("X-T: 1\r\nX-Host: b\r\n\r\n") == .success(2))
    }

    @Test func aSizeLineWithoutEndIsBounded() {
        #expect(Self.read("5" + String(repeating: ";a", count: 600)) == .refused(.malformedChunk))
        let padded = "1;" + String(repeating: "a", count: 1000) + "\r\nX\r\n"
        #expect(
            Self.read(String(repeating: padded, count: 4) + "0\r\n\r\n") == .body("XXXX", trailerLines: 0, left: ""))
        #expect(Self.read(String(repeating: padded, count: 5)) == .refused(.malformedChunk), "extensions are bounded")
    }
}
