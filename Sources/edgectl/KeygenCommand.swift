import ArgumentParser
import Foundation
import TenantEdgeCore
import TenantEdgeNative

extension EdgectlCommand {
    /// `edgectl keygen --out DIR [--region R …]`: the origin's Ed25519 signing key pair and one
    /// 32-byte KEK per region, written with mode 0600 (the public key 0644). Existing files are
    /// never overwritten.
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the bundle signing key pair and region KEKs.")

        @Option(name: .long, help: "Directory to write into (created if missing).")
        var out: String

        @Option(name: .long, help: "A region to make a KEK for (<region>.kek); repeat for more.")
        var region: [String] = []

        func run() throws {
            try EdgectlCommand.reportingErrors {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let key = try Ed25519Key.generate()
                try write(try key.privatePEM(), to: "origin-signing.key", mode: 0o600)
                try write(try key.publicPEM(), to: "origin-signing.pub", mode: 0o644)
                for name in region {
                    guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), !name.isEmpty
                    else {
                        throw EdgeError(.invalidConfig, "--region: '\(name)' is not a region name")
                    }
                    try write(try OpenSSL.randomBytes(32), to: "\(name).kek", mode: 0o600)
                }
                print("wrote origin-signing.key, origin-signing.pub\(region.map { ", \($0).kek" }.joined()) to \(out)")
            }
        }

        private func write(_ bytes: [UInt8], to name: String, mode: Int) throws(EdgeError) {
            let path = out + "/" + name
            // O_EXCL: never overwrite; the mode applies from creation, so a key is never readable by others.
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
            guard descriptor >= 0 else {
                throw EdgeError(.io, errno == EEXIST ? "\(path): exists; not overwritten" : "\(path): cannot create")
            }
            defer { close(descriptor) }
            let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            guard written == bytes.count, fsync(descriptor) == 0 else { throw EdgeError(.io, "\(path): cannot write") }
        }
    }
}
