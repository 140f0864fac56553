import Foundation
import TenantEdgeCore
import TenantEdgeNative
import Testing

/// Ed25519 through OpenSSL: RFC 8032's first test vector, and the failures that must fail.
@Suite("Ed25519 signing keys")
struct Ed25519KeyTests {
    /// RFC 8032 section 7.1, TEST 1, wrapped as PKCS#8 and SPKI PEM (fixed DER prefixes for Ed25519).
    static let secret = Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!
    static let publicKey = Hex.decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")!
    static let signature = Hex.decode(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
            + "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )!

    static func pem(_ label: String, _ der: [UInt8]) -> [UInt8] {
        Array("-----BEGIN \(label)-----\n\(Data(der).base64EncodedString())\n-----END \(label)-----\n".utf8)
    }

    @Test func rfc8032VectorSignsAndVerifies() throws {
        let key = try Ed25519Key(
            pem: Self.pem("PRIVATE KEY", Hex.decode("302e020100300506032b657004220420")! + Self.secret), name: "test")
        #expect(try key.sign([]) == Self.signature)
        let verifier = try Ed25519Key(
            pem: Self.pem("PUBLIC KEY", Hex.decode("302a300506032b6570032100")! + Self.publicKey), name: "test")
        #expect(!verifier.canSign)
        #expect(verifier.verify(signature: Self.signature, message: []))
        #expect(try verifier.publicPEM() == key.publicPEM())
    }

    @Test func aChangedByteAnotherKeyOrAShortSignatureFails() throws {
        let key = try Ed25519Key.generate()
        let verifier = try Ed25519Key(pem: try key.publicPEM(), name: "pub")
        let message = Array(#"{"version":2,"tenants":[]}"#.utf8)
        let signature = try key.sign(message)
        #expect(verifier.verify(signature: signature, message: message))
        var changed = message
        changed[3] ^= 1
        #expect(!verifier.verify(signature: signature, message: changed))
        var badSignature = signature
        badSignature[10] ^= 1
        #expect(!verifier.verify(signature: badSignature, message: message))
        #expect(!verifier.verify(signature: Array(signature.prefix(63)), message: message))
        let other = try Ed25519Key(pem: try Ed25519Key.generate().publicPEM(), name: "other")
        #expect(!other.verify(signature: signature, message: message))
        #expect(throws: EdgeError.self) { try verifier.sign(message) }
        let reloaded = try Ed25519Key(pem: try key.privatePEM(), name: "key")
        #expect(try reloaded.sign(message) == signature, "Ed25519 is deterministic")
    }

    @Test func garbageAndNonEd25519PEMAreClearErrors() {
        #expect(throws: EdgeError.self) {
            try Ed25519Key(pem: Array("not a key".utf8), name: "security.config_public_key")
        }
        #expect(throws: EdgeError.self) {
            try Ed25519Key(pem: Self.pem("PUBLIC KEY", [1, 2, 3]), name: "security.config_public_key")
        }
    }
}
