import NIOCore
import NIOHTTP1
import TenantEdgeCore
import Testing

@testable import TenantEdgeHTTP

/// `keepsConnection` and `ConnectionOptions` read `Connection` in one pass; these hold them to the
/// rules they replaced: NIO's `isKeepAlive` (with no `Upgrade`), and the admission's token loop that
/// drops the fields a client names as hop-by-hop.
@Suite("keepsConnection against NIO's isKeepAlive")
struct KeepsConnectionTests {
    /// A head with its fields as received (in wire form, as the decoder hands them over); the
    /// verdict must be the same when they are NIO's `HTTPHeaders` (after an edit).
    static func head(_ minor: Int, _ fields: [(String, String)]) -> EdgeRequestHead {
        let version = HTTPVersion(major: 1, minor: minor)
        let received = EdgeRequestHead(version: version, method: .GET, uri: "/", headers: .received(fields))
        let edited = EdgeRequestHead(version: version, method: .GET, uri: "/", headers: RequestFields(fields))
        #expect(received.keepsConnection == edited.keepsConnection, "\(fields) in either form")
        return received
    }

    /// NIO's verdict, the rule `keepsConnection` replaced.
    static func nioKeeps(_ head: EdgeRequestHead) -> Bool {
        let nioForm = head.httpRequestHead
        return nioForm.isKeepAlive && !nioForm.headers.contains(name: "upgrade")
    }

    /// The admission's rule for naming other fields: a token, trimmed, neither `close` nor `keep-alive`.
    static func namesOthers(_ values: [String]) -> Bool {
        values.contains { value in
            value.split(separator: ",").contains { token in
                let name = token.trimmingSpaces()
                return !name.isEmpty && !name.caseInsensitiveEquals("close")
                    && !name.caseInsensitiveEquals("keep-alive")
            }
        }
    }

    @Test func theCommonCasesSayWhatAnOperatorExpects() {
        #expect(Self.head(1, []).keepsConnection, "HTTP/1.1 keeps by default")
        #expect(!Self.head(0, []).keepsConnection, "HTTP/1.0 closes by default")
        #expect(!Self.head(1, [("Connection", "close")]).keepsConnection)
        #expect(Self.head(0, [("connection", " Keep-Alive ")]).keepsConnection)
        #expect(!Self.head(0, [("Connection", "keep-alive"), ("Connection", "keep-alive")]).keepsConnection)
        #expect(!Self.head(1, [("Connection", "keep-alive, close")]).keepsConnection)
        #expect(!Self.head(1, [("Upgrade", "websocket"), ("Connection", "upgrade")]).keepsConnection)
        #expect(!Self.head(0, [("Connection", "keep-alive,\u{301}x")]).keepsConnection, "one token to NIO: no verdict")
    }

    /// Random heads from a small alphabet of names, tokens and separators (so cases collide often),
    /// against NIO's verdict and the admission's loop; 20,000 per seed.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func agreesWithNIOAndTheAdmissionLoop(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let names = [
            "Connection", "connection", "CONNECTION", "Upgrade", "upgrade", "X-Other", "Keep-Alive", "Connectio",
        ]
        let tokens = [
            "close", "Close", "CLOSE", "keep-alive", "Keep-Alive", "KEEP-ALIVE", "keep_alive", "closed", "upgrade",
            "te", "X-Secret", "", " ", "\t", "clo se", "keep-alivex", "\u{301}x", "\u{301}", "é", "close\u{301}",
        ]
        // A comma a combining mark follows is one `Character`: no separator for NIO or the admission.
        let separators = [",", ", ", " ,", ",,", " , ", "\t,", ",\u{301}"]
        for _ in 0..<20_000 {
            var fields: [(String, String)] = []
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                var value = ""
                for index in 0..<Int.random(in: 0...3, using: &random) {
                    if index > 0 { value += separators.randomElement(using: &random)! }
                    value += tokens.randomElement(using: &random)!
                }
                fields.append((names.randomElement(using: &random)!, value))
            }
            let head = Self.head(Int.random(in: 0...1, using: &random), fields)
            #expect(head.keepsConnection == Self.nioKeeps(head), "\(fields) over HTTP/1.\(head.version.minor)")
            var options = ConnectionOptions()
            for (name, value) in fields where name.caseInsensitiveEquals("connection") { options.read(value) }
            let values = head.headers["connection"]
            #expect(options.namesOtherFields == Self.namesOthers(values), "\(values)")
        }
    }
}
