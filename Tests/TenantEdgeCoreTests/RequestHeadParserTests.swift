import Testing

@testable import TenantEdgeCore

/// The strict request parser's rules, each by an input that breaks exactly one of them.
@Suite("Strict request head parser (RFC 9112)")
struct RequestHeadParserTests {
    struct Parsed: Equatable {
        var layout: RequestHeadLayout
        var target: String
        var fields: [[String]]
        var consumed: Int
    }

    /// Scans (in `pieces` reads of about equal size) and parses `text`.
    static func parse(_ text: String, pieces: Int = 1, maxHeadBytes: Int = 4096) -> Result<Parsed, RequestRefusal>? {
        let bytes = Array(text.utf8)
        var scanner = RequestHeadScanner(maxHeadBytes: maxHeadBytes)
        let step = max(1, bytes.count / max(pieces, 1))
        var available = 0
        while true {
            available = min(bytes.count, available + step)
            let found = Array(bytes[0..<available]).withUnsafeBytes { scanner.scan($0) }
            switch found {
            case .refused(let refusal): return .failure(refusal)
            case .incomplete where available == bytes.count: return nil
            case .incomplete: continue
            case .complete(let start, let end, let lines):
                var fields: [[String]] = []
                return bytes.withUnsafeBytes { raw in
                    RequestHeadParser.parse(raw, start: start, end: end, lines: lines) { name, value in
                        fields.append([
                            String(decoding: UnsafeRawBufferPointer(rebasing: raw[name]), as: UTF8.self),
                            String(decoding: UnsafeRawBufferPointer(rebasing: raw[value]), as: UTF8.self),
                        ])
                    }.map { layout in
                        let target = String(
                            decoding: UnsafeRawBufferPointer(rebasing: raw[layout.target]), as: UTF8.self)
                        return Parsed(layout: layout, target: target, fields: fields, consumed: end)
                    }
                }
            }
        }
    }

    static func refusal(_ text: String, maxHeadBytes: Int = 4096) -> RequestRefusal.Reason? {
        guard case .failure(let refusal) = parse(text, maxHeadBytes: maxHeadBytes) else { return nil }
        return refusal.reason
    }

    @Test func aPlainRequestReadsAsItWasSent() throws {
        let text =
            "\r\nGET /v1/blob/1?size=1024 HTTP/1.1\r\nHost: api.acme.test\r\nX-Empty:\r\nX-Pad: \t a b \t\r\n\r\nNEXT"
        let parsed = try #require(try Self.parse(text)?.get())
        #expect(parsed.layout.method == .get)
        #expect(parsed.target == "/v1/blob/1?size=1024")
        #expect(parsed.layout.minorVersion == 1)
        #expect(parsed.layout.framing == .none)
        #expect(parsed.fields == [["Host", "api.acme.test"], ["X-Empty", ""], ["X-Pad", "a b"]])
        #expect(parsed.consumed == text.utf8.count - 4, "the next request's bytes are left")
    }

    /// Values are read eight bytes at a time: a forbidden byte is found at every place in a word,
    /// tabs and bytes past ASCII pass, and whitespace at the end is dropped as from a short value.
    @Test func longValuesAreCheckedAtEveryPlace() throws {
        let plain = Array(String(repeating: "abcdefgh", count: 3).utf8)
        func head(_ value: [UInt8]) -> String {
            "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(decoding: value, as: UTF8.self) + "\r\nY: 1\r\n\r\n"
        }
        for place in plain.indices {
            for (byte, reason) in [
                (0x00, RequestRefusal.Reason.invalidFieldValue), (0x01, .invalidFieldValue), (0x1F, .invalidFieldValue),
                (0x7F, .invalidFieldValue), (0x0D, .bareCarriageReturn),
            ] as [(UInt8, RequestRefusal.Reason)] {
                var value = plain
                value[place] = byte
                #expect(Self.refusal(head(value)) == reason, "byte \(byte) at \(place)")
            }
            var tabbed = plain
            tabbed[place] = 0x09
            let parsed = try #require(try Self.parse(head(tabbed))?.get())
            // A tab first or last is whitespace around the value.
            let kept = place == 0 ? Array(tabbed.dropFirst()) : place == plain.count - 1 ? tabbed.dropLast() : tabbed
            #expect(parsed.fields == [["Host", "a"], ["X", String(decoding: kept, as: UTF8.self)], ["Y", "1"]])
        }
        let wide = String(repeating: "caf\u{E9} ", count: 5) + " \t  \t   "
        let parsed = try #require(try Self.parse(head(Array(wide.utf8)))?.get())
        #expect(parsed.fields[1] == ["X", String(String(repeating: "caf\u{E9} ", count: 5).dropLast())])
    }

    /// The word test against a byte-by-byte one: every byte value at every place in a word of
    /// letters, and random words.
    @Test func theWordTestFindsExactlyTheControlBytes() {
        func naive(_ word: UInt64) -> Bool {
            (0..<8).contains { shift in
                let byte = UInt8(truncatingIfNeeded: word >> (shift * 8))
                return byte < 0x20 || byte == 0x7F
            }
        }
        let letters: UInt64 = 0x6162_6364_6566_6768
        for place in 0..<8 {
            for byte in 0...255 as ClosedRange<UInt64> {
                let word = letters & ~(0xFF << (place * 8)) | byte << (place * 8)
                #expect(RequestHeadParser.hasControlByte(word) == naive(word), "\(String(word, radix: 16))")
            }
        }
        var random = SeededGenerator(seed: 7)
        for _ in 0..<100_000 {
            let word = random.next()
            if RequestHeadParser.hasControlByte(word) != naive(word) {
                Issue.record("disagrees on \(String(word, radix: 16))")
                return
            }
        }
    }

    @Test func readsInPiecesGiveTheSameHead() throws {
        let text = "POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0012\r\nX-A: 1\r\n\r\n"
        let whole = try #require(try Self.parse(text)?.get())
        #expect(whole.layout.framing == .length(12))
        for pieces in [2, 3, 7, text.utf8.count] {
            #expect(try Self.parse(text, pieces: pieces)?.get() == whole, "\(pieces) reads")
        }
        #expect(Self.parse("GET / HTTP/1.1\r\nHost: a\r\n\r") == nil, "incomplete is not refused")
    }

    @Test func framingAndVersions() throws {
        let chunked = try #require(
            try Self.parse("PUT /c HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n")?.get())
        #expect(chunked.layout.framing == .chunked)
        // Spaces after a framing value and tabs before it are whitespace to llhttp too (a tab after
        // it is refused, in `eachRuleRefuses`).
        for framing in ["Content-Length:\t 7  ", "Transfer-Encoding: \tchunked  "] {
            let parsed = try #require(try Self.parse("PUT /c HTTP/1.1\r\nHost: a\r\n\(framing)\r\n\r\n")?.get())
            #expect(parsed.layout.framing == (framing.hasPrefix("C") ? .length(7) : .chunked))
        }
        let old = try #require(try Self.parse("GET /o HTTP/1.0\r\n\r\n")?.get())
        #expect(old.layout.minorVersion == 0, "HTTP/1.0 needs no Host")
        let star = try #require(try Self.parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")?.get())
        #expect(star.target == "*")
        let absolute = try #require(try Self.parse("GET http://a.test/x?q HTTP/1.1\r\nHost: a.test\r\n\r\n")?.get())
        #expect(absolute.target == "http://a.test/x?q")
        for target in ["HTTPS://[::1]:8443?q", "http://a.test:80"] {
            #expect(try Self.parse("GET \(target) HTTP/1.1\r\nHost: a.test\r\n\r\n")?.get().target == target)
        }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\nHost: a\n\n", RequestRefusal.Reason.bareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\n\r\n", .bareLineFeed),
        ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .bareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .bareCarriageReturn),
        ("GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n", .bareCarriageReturn),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .malformedRequestLine),
        ("GET /\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", .malformedRequestLine),
        ("GET /\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", .malformedRequestLine),
        ("GARBAGE\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", .unsupportedVersion),
        ("get / HTTP/1.1\r\nHost: a\r\n\r\n", .unknownMethod),
        ("PURGE / HTTP/1.1\r\nHost: a\r\n\r\n", .unknownMethod),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", .connectNotServed),
        ("GET abc HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET @127.0.0.1:9/x HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http://u@a.test/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http://a.test{/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http://a.test#f HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET ftp://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http://a.test:99999/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http://a..test/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", .obsoleteLineFolding),
        ("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", .obsoleteLineFolding),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", .invalidFieldName),
        ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", .invalidFieldName),
        ("GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", .invalidFieldName),
        ("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", .invalidFieldName),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .invalidFieldValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1}b\r\n\r\n", .invalidFieldValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", .invalidFieldValue),
        ("GET / HTTP/1.1\r\nX: 1\r\n\r\n", .missingHost),
        ("GET http://a/ HTTP/1.1\r\n\r\n", .missingHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nhOsT: b\r\n\r\n", .duplicateHost),
        ("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", .duplicateHost),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", .duplicateContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", .invalidContentLength),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            .lengthWithTransferEncoding
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            .lengthWithTransferEncoding
        ),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            .unsupportedTransferCoding
        ),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", .unsupportedTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \t\r\n\r\n", .unsupportedTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\t\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10),
    ])
    func eachRuleRefuses(_ text: String, _ reason: RequestRefusal.Reason) {
        #expect(Self.refusal(text) == reason)
    }

    @Test func sizeAndCountLimits() {
        let many = (0...RequestHeadParser.maxFields).map { "X-\($0): v\r\n" }.joined()
        #expect(Self.refusal("GET / HTTP/1.1\r\nHost: a\r\n\(many)\r\n", maxHeadBytes: 1 << 20) == .tooManyFields)
        let big = String(repeating: "b", count: 5000)
        #expect(Self.refusal("GET / HTTP/1.1\r\nHost: a\r\nX: \(big)\r\n\r\n") == .headTooLarge)
        #expect(Self.refusal("GET /\(big) HTTP/1.1\r\nHost: a\r\n\r\n") == .targetTooLong)
        #expect(Self.refusal(String(repeating: "\r\n", count: 3000)) == .headTooLarge, "empty lines are bounded")
    }

    @Test func refusalsAnswerWithTheirStatus() {
        #expect(RequestRefusal(.unknownMethod).status == 501)
        #expect(RequestRefusal(.connectNotServed).status == 405)
        #expect(RequestRefusal(.unsupportedVersion).status == 505)
        #expect(RequestRefusal(.headTooLarge).code == "request_header_fields_too_large")
        #expect(RequestRefusal(.targetTooLong).status == 414)
        #expect(RequestRefusal(.obsoleteLineFolding).status == 400)
        for reason in RequestRefusal.Reason.allCases { #expect(!RequestRefusal(reason).detail.isEmpty) }
    }
}
