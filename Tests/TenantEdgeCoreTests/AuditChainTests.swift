import Testing

@testable import TenantEdgeCore

/// The audit hash chain as pure logic. The hash here is a stand-in (the node and edgectl use
/// OpenSSL's SHA-256, covered by the server tests and the CLI checks); any change of input must
/// change it, which this one does.
@Suite("Audit hash chain")
struct AuditChainTests {
    static let hash: AuditChain.SHA256 = { bytes in
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        var out: [UInt8] = []
        for round in 0..<4 {
            for byte in bytes { state = (state ^ UInt64(byte)) &* 0x100_0000_01b3 }
            state = (state ^ UInt64(round)) &* 0x100_0000_01b3
            withUnsafeBytes(of: state.bigEndian) { out += $0 }
        }
        return out
    }

    static func log(_ count: Int) throws -> (String, AuditChain) {
        var chain = try AuditChain(sha256: hash)
        let lines = (1...count).map { index in
            chain.append(
                event: "purge", actor: "admin:ab12", tenant: "acme", details: ["keys": "\(index)", "path": "/v1/a"],
                at: 1_700_000_000)
        }
        return (lines.joined(separator: "\n") + "\n", chain)
    }

    @Test func aWrittenLogVerifiesAndLinksEachLineToTheLast() throws {
        let (text, chain) = try Self.log(3)
        #expect(AuditChain.verify(text, sha256: Self.hash) == .valid(entries: 3))
        #expect(chain.seq == 3)
        let first = try #require(text.split(separator: "\n").first)
        #expect(first.contains(#""prev":"\#(AuditChain.genesis)""#))
        #expect(first.contains(#""at":"2023-11-14T22:13:20.000Z""#))
        #expect(first.contains(#""path":"/v1/a""#), "slashes are not escaped")
    }

    @Test func editingRemovingOrReorderingALineBreaksTheChainThere() throws {
        let (text, _) = try Self.log(4)
        var lines = text.split(separator: "\n").map(String.init)
        var edited = lines
        edited[1] = edited[1].replacingOccurrences(of: #""keys":"2""#, with: #""keys":"9""#)
        #expect(
            AuditChain.verify(edited.joined(separator: "\n"), sha256: Self.hash)
                == .broken(line: 2, reason: "hash does not match the line"))
        var removed = lines
        removed.remove(at: 2)
        #expect(
            AuditChain.verify(removed.joined(separator: "\n"), sha256: Self.hash)
                == .broken(line: 3, reason: "seq is not 3"))
        lines.swapAt(0, 1)
        #expect(
            AuditChain.verify(lines.joined(separator: "\n"), sha256: Self.hash)
                == .broken(line: 1, reason: "seq is not 1"))
        #expect(AuditChain.verify("{\"seq\":1}\nnot json", sha256: Self.hash) == .broken(line: 1, reason: "no hash"))
    }

    @Test func aChainContinuesAfterTheLastLineOfAnExistingLog() throws {
        let (text, _) = try Self.log(2)
        let last = String(text.split(separator: "\n").last!)
        var chain = try AuditChain(sha256: Self.hash, continuingAfter: last)
        let next = chain.append(event: "config_applied", actor: "origin", tenant: nil, details: [:], at: 1_700_000_001)
        #expect(AuditChain.verify(text + next + "\n", sha256: Self.hash) == .valid(entries: 3))
        #expect(throws: EdgeError.self) { try AuditChain(sha256: Self.hash, continuingAfter: "garbage") }
    }
}
