import TenantEdgeCore
import TenantEdgeNative
import Testing

@Suite("Tenant keys sealed under a region KEK")
struct KeyWrapTests {
    @Test func aWrappedKeyOpensOnlyUnderItsKEKTenantAndVersion() throws {
        let kek = try OpenSSL.randomBytes(32)
        let key = try OpenSSL.randomBytes(32)
        let aad = KeyWrap.aad(tenant: "acme", version: 3)
        let wrapped = try KeyWrap.seal(key, kek: kek, aad: aad)
        #expect(wrapped.count == 12 + 32 + 16)
        #expect(KeyWrap.open(wrapped, kek: kek, aad: aad) == key)
        #expect(KeyWrap.open(wrapped, kek: try OpenSSL.randomBytes(32), aad: aad) == nil, "another KEK")
        #expect(
            KeyWrap.open(wrapped, kek: kek, aad: KeyWrap.aad(tenant: "globex", version: 3)) == nil, "another tenant")
        #expect(KeyWrap.open(wrapped, kek: kek, aad: KeyWrap.aad(tenant: "acme", version: 4)) == nil, "another version")
        var changed = wrapped
        changed[20] ^= 1
        #expect(KeyWrap.open(changed, kek: kek, aad: aad) == nil, "a changed byte")
        #expect(try KeyWrap.seal(key, kek: kek, aad: aad) != wrapped, "a fresh nonce each time")
        var wiped = key
        KeyWrap.wipe(&wiped)
        #expect(wiped == [UInt8](repeating: 0, count: 32))
    }
}
