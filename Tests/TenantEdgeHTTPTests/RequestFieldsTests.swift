import NIOCore
import NIOHTTP1
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

extension RequestFields {
    /// Fields as the decoder hands them over: `Name: value` lines in one buffer, each name and value
    /// found by its span (a request line before them, so no span starts at 0).
    static func received(_ pairs: [(String, String)]) -> RequestFields {
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        var spans: [Span] = []
        for (name, value) in pairs {
            let nameStart = buffer.writerIndex
            buffer.writeString(name)
            let nameEnd = buffer.writerIndex
            buffer.writeString(": ")
            let valueStart = buffer.writerIndex
            buffer.writeString(value)
            spans.append(Span(name: nameStart..<nameEnd, value: valueStart..<buffer.writerIndex))
            buffer.writeString("\r\n")
        }
        buffer.writeString("\r\n")
        return RequestFields(received: buffer, spans: spans)
    }
}

/// `RequestFields` must read the same in its two forms (as received, and as `HTTPHeaders` after an
/// edit) and as NIO's `HTTPHeaders` reads the same fields.
@Suite("Request fields as received")
struct RequestFieldsTests {
    static let pairs: [(String, String)] = [
        ("Host", "api.acme.test"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) a long one"),
        ("accept", "application/json"), ("X-Forwarded-For", "192.0.2.1"), ("x-forwarded-for", "198.51.100.7"),
        ("Empty", ""), ("Caf\u{e9}", "cr\u{e8}me"),
    ]

    @Test func lookupsReadWhatHTTPHeadersReads() {
        let nio = HTTPHeaders(Self.pairs)
        for fields in [RequestFields.received(Self.pairs), RequestFields(Self.pairs)] {
            #expect(fields.count == Self.pairs.count)
            for name in [
                "host", "HOST", "user-agent", "Accept", "x-forwarded-for", "empty", "missing", "hos", "caf\u{e9}",
            ] {
                #expect(fields.first(name: name) == nio.first(name: name), "first \(name)")
                #expect(fields.contains(name: name) == nio.contains(name: name), "contains \(name)")
                #expect(fields[name] == nio[name], "all of \(name)")
            }
            #expect(fields["X-FORWARDED-FOR"] == ["192.0.2.1", "198.51.100.7"], "every value, in order")
            for name in ["x-forwarded-for", "Host", "empty", "missing"] {
                #expect(fields.combined(name) == fields.fields.combined(name), "combined \(name)")
            }
            #expect(fields.combined("x-forwarded-for") == "192.0.2.1, 198.51.100.7")
            #expect(fields.map { [$0.name, $0.value] } == Self.pairs.map { [$0.0, $0.1] }, "in order, as given")
            #expect(fields.httpHeaders == nio)
            #expect(fields.countedBytes == Self.pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        }
        #expect(RequestFields.received(Self.pairs) == RequestFields(Self.pairs))
        #expect(RequestFields.received(Self.pairs) != RequestFields(Array(Self.pairs.dropLast())))
    }

    @Test func aNameOnlyMatchesItsLettersWithoutCase() {
        let fields = RequestFields.received([("X-A~B", "1"), ("x-a^b", "2")])
        #expect(fields.first(name: "x-a^b") == "2", "NIO's comparison would take `~` for `^`; this does not")
        #expect(fields.first(name: "X-A~B") == "1")
        #expect(fields.first(name: "x-a~") == nil)
    }

    @Test func anEditLeavesTheReceivedBytesAndKeepsTheOrder() {
        var fields = RequestFields.received(Self.pairs)
        fields.replaceOrAdd(name: "host", value: "canonical.test")
        fields.remove(name: "X-FORWARDED-FOR")
        fields.add(name: "Via", value: "1.1 edge")
        #expect(fields.first(name: "Host") == "canonical.test")
        #expect(fields["x-forwarded-for"].isEmpty)
        #expect(fields.map(\.name) == ["User-Agent", "accept", "Empty", "Caf\u{e9}", "host", "Via"])
    }

    @Test func invalidUTF8IsReplacedAsHTTPHeadersWouldHaveIt() {
        var buffer = ByteBuffer(string: "X-Bytes: ")
        let valueStart = buffer.writerIndex
        buffer.writeBytes([0x61, 0xFF, 0x62])
        let fields = RequestFields(
            received: buffer, spans: [.init(name: 0..<7, value: valueStart..<buffer.writerIndex)])
        #expect(fields.first(name: "x-bytes") == "a\u{FFFD}b")
        #expect(fields.map(\.value) == ["a\u{FFFD}b"])
    }

    @Test func aSpanOutsideTheBytesIsLeftOutRatherThanRead() {
        let buffer = ByteBuffer(string: "Host: a\r\n")
        let fields = RequestFields(
            received: buffer, spans: [.init(name: 0..<4, value: 6..<7), .init(name: 0..<4, value: 6..<99)])
        #expect(fields.count == 1)
        #expect(fields["host"] == ["a"])
    }
}
