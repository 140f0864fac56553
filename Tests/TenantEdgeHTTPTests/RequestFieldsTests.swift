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
        guard let fields = RequestFields(received: buffer, spans: spans) else {
            preconditionFailure("spans inside their buffer were refused")
        }
        return fields
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

    @Test func removalsKeepTheFieldsAsReceivedAndAnAdditionLetsGoOfThem() {
        var fields = RequestFields.received(Self.pairs)
        let held = fields.heldBytes
        fields.remove(name: "X-FORWARDED-FOR")
        #expect(fields.heldBytes == held && held > 0, "still the received bytes")
        #expect(fields["x-forwarded-for"].isEmpty && fields.count == Self.pairs.count - 2)
        fields.replaceOrAdd(name: "host", value: "canonical.test")
        fields.add(name: "Via", value: "1.1 edge")
        #expect(fields.heldBytes == 0, "an addition turns them into HTTPHeaders")
        #expect(fields.first(name: "Host") == "canonical.test")
        #expect(fields.map(\.name) == ["User-Agent", "accept", "Empty", "Caf\u{e9}", "host", "Via"])
    }

    /// Removals compare as lookups do in both forms: `~` is not `^` (NIO's `remove` takes one for
    /// the other), and a set of names goes in one pass.
    @Test func removalsCompareNamesAsLookupsDo() {
        for edited in [false, true] {
            var fields = RequestFields.received([("X-A~B", "1"), ("x-a^b", "2"), ("Keep", "3"), ("X-Other", "4")])
            if edited { fields.add(name: "Z", value: "5") }
            fields.remove(name: "X-A^B")
            #expect(fields.map(\.value) == (edited ? ["1", "3", "4", "5"] : ["1", "3", "4"]), "edited: \(edited)")
            fields.remove(lowercasedNamesIn: [Array("x-other".utf8), Array("k".utf8), Array("\u{212A}eep".utf8)])
            #expect(fields.map(\.value) == (edited ? ["1", "3", "5"] : ["1", "3"]), "bytes, not Unicode equality")
            fields.remove(lowercasedNamesIn: [Array("keep".utf8)])
            #expect(fields.map(\.value) == (edited ? ["1", "5"] : ["1"]))
        }
    }

    @Test func invalidUTF8IsReplacedAsHTTPHeadersWouldHaveIt() throws {
        var buffer = ByteBuffer(string: "X-Bytes: ")
        let valueStart = buffer.writerIndex
        buffer.writeBytes([0x61, 0xFF, 0x62])
        let fields = try #require(
            RequestFields(received: buffer, spans: [.init(name: 0..<7, value: valueStart..<buffer.writerIndex)]))
        #expect(fields.first(name: "x-bytes") == "a\u{FFFD}b")
        #expect(fields.map(\.value) == ["a\u{FFFD}b"])
    }

    @Test func spansOutsideTheBytesAreRefusedRatherThanRead() {
        let buffer = ByteBuffer(string: "Host: a\r\n")
        #expect(RequestFields(received: buffer, spans: [.init(name: 0..<4, value: 6..<7)])?["host"] == ["a"])
        #expect(RequestFields(received: buffer, spans: [.init(name: 0..<4, value: 6..<99)]) == nil)
        #expect(RequestFields(received: buffer, spans: [.init(name: -1..<4, value: 6..<7)]) == nil)
        #expect(
            RequestFields(received: buffer.getSlice(at: 2, length: 3)!, spans: [.init(name: 0..<4, value: 0..<1)])
                == nil)
    }
}
