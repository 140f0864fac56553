@testable import TenantEdgeCore

/// A stand-in cipher for pure-logic tests: keyed FNV digests and an XOR "seal" with a checksum over
/// AAD and plaintext, so tampering and moved entries are still detected. Not cryptography: the real
/// AES-GCM cipher is tested in TenantEdgeNativeTests and end to end in TenantEdgeNodeTests.
final class FakeCipher: TenantCipher {
    let keyVersion: UInt32 = 1
    var encrypts: Bool { true }
    let seed: UInt64

    init(seed: UInt64) { self.seed = seed }

    private func fnv(_ bytes: [UInt8], salt: UInt64) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed ^ salt
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    func digest(_ text: String) -> KeyDigest {
        let bytes = Array(text.utf8)
        return KeyDigest(
            w0: fnv(bytes, salt: 1), w1: fnv(bytes, salt: 2), w2: fnv(bytes, salt: 3), w3: fnv(bytes, salt: 4))
    }

    func seal(_ plaintext: [UInt8], aad: [UInt8]) throws(EdgeError) -> [UInt8] {
        let check = fnv(aad + plaintext, salt: 9)
        return plaintext.map { $0 ^ UInt8(truncatingIfNeeded: seed) } + withUnsafeBytes(of: check) { Array($0) }
    }

    func plaintextCount(ofSealedCount count: Int) -> Int? { count >= 8 ? count - 8 : nil }

    func open(
        sealedBytes rawSealed: UnsafeRawBufferPointer, aad rawAAD: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(EdgeError) -> Int {
        let aad = Array(rawAAD)
        let sealed = Array(rawSealed)
        guard let count = plaintextCount(ofSealed: sealed) else { throw EdgeError(.decryptFailed, "short") }
        let plaintext = sealed[..<count].map { $0 ^ UInt8(truncatingIfNeeded: seed) }
        let check = withUnsafeBytes(of: fnv(aad + plaintext, salt: 9)) { Array($0) }
        guard Array(sealed[count...]) == check else { throw EdgeError(.decryptFailed, "checksum") }
        plaintext.withUnsafeBytes { output.copyMemory(from: $0) }
        return count
    }
}
