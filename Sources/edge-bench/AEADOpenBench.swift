import Foundation
import TenantEdgeCore
import TenantEdgeNative

/// `edge-bench aead-open SIZE [SECONDS]`: how long the node's own cipher takes to open one sealed
/// body of SIZE bytes on one thread: `AESGCMTenantCipher.open` with a key scheduled once and
/// associated data of a hit's length (tenant prefix, storage digest, entry header), as an L1 hit
/// calls it. `make bench` leaves the node this much user time in its second ceiling, so the
/// ceiling follows the library the node links, not the system's `openssl`. Prints
/// `SIZE microseconds_per_open`; exits 1 when a body fails to open.
enum AEADOpenBench {
    static func run(_ arguments: [String]) throws {
        guard arguments.count >= 3, let size = Int(arguments[2]), size > 0, size <= 64 * 1024 * 1024 else {
            EdgeBench.usage()
        }
        let seconds = arguments.count > 3 ? Double(arguments[3]) ?? 2 : 2
        let cipher = try AESGCMTenantCipher(keys: [1: OpenSSL.randomBytes(32)])
        // As `TenantCache.open` lays it out: the tenant prefix, the storage digest, an untagged
        // entry's 60-byte header.
        let aad = Array("te:bench:http:".utf8) + (try OpenSSL.randomBytes(32 + 60))
        let sealed = try cipher.seal(OpenSSL.randomBytes(size), aad: aad)
        var output = [UInt8](repeating: 0, count: size)
        var failed = 0
        let rate = GeoLookupBench.rate(seconds) { _ in
            let opened = sealed.withUnsafeBytes { sealed in
                aad.withUnsafeBytes { aad in
                    output.withUnsafeMutableBytes { try? cipher.open(sealedBytes: sealed, aad: aad, into: $0) }
                }
            }
            if opened != size { failed += 1 }
        }
        guard failed == 0, let opens = Double(rate), opens > 0 else {
            FileHandle.standardError.write(Data("aead-open: \(failed) bodies failed to open\n".utf8))
            exit(1)
        }
        print(size, String(format: "%.3f", 1e6 / opens))
    }
}
