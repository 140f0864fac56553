import Testing

@testable import TenantEdgeCore

/// `ConnectionOptions` on its own: the verdicts and the hop-by-hop signal for values as clients and
/// proxies send them, and for values past ASCII (split on `Character`s, as NIO and the admission do).
/// `KeepsConnectionTests` (HTTP) holds it to NIO's `isKeepAlive` over random heads.
@Suite("Connection field options")
struct ConnectionOptionsTests {
    static func read(_ values: String...) -> ConnectionOptions {
        var options = ConnectionOptions()
        for value in values { options.read(value) }
        return options
    }

    @Test func verdictsAndOtherFields() {
        #expect(Self.read().verdict == .unspecified && !Self.read().namesOtherFields)
        #expect(Self.read("close").verdict == .close && !Self.read("close").namesOtherFields)
        #expect(Self.read(" Keep-Alive\t").verdict == .keepAlive)
        #expect(Self.read("keep-alive, ,close").verdict == .close, "two verdicts close")
        #expect(Self.read("keep-alive", "keep-alive").verdict == .close, "the same twice closes too")
        #expect(Self.read("\tX-Secret ,keep-alive") == Self.read("keep-alive, x-secret"))
        #expect(Self.read("te").namesOtherFields && Self.read("te").verdict == .unspecified)
        #expect(!Self.read(",, ,").namesOtherFields && Self.read(",, ,").verdict == .unspecified)
        #expect(Self.read("close").keepsConnection(minorVersion: 1) == false)
        #expect(Self.read().keepsConnection(minorVersion: 1) && !Self.read().keepsConnection(minorVersion: 0))
    }

    /// A comma a combining mark follows is one `Character`: no separator. The byte split would
    /// have read `keep-alive` here and kept an HTTP/1.0 connection NIO closes.
    @Test func aValuePastASCIIIsSplitOnCharacters() {
        let joined = Self.read("keep-alive,\u{301}x")
        #expect(joined.verdict == .unspecified && joined.namesOtherFields)
        let separate = Self.read("keep-alive, é")
        #expect(separate.verdict == .keepAlive && separate.namesOtherFields)
    }
}
