import ArgumentParser
import Foundation
import TenantEdgeCore
import TenantEdgeNative

extension EdgectlCommand {
    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Config bundles.", subcommands: [Sign.self, Publish.self])
    }

    /// `edgectl config sign --key KEY FILE`: prints the `Edge-Signature` value for a bundle, for
    /// pushing a bundle by hand (`curl -X PUT --data-binary @FILE -H "Edge-Signature: …"`) or from
    /// a pipeline that keeps the signing key offline.
    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign a bundle file with the origin's Ed25519 key.")

        @Option(name: .long, help: "The signing key (PEM, from edgectl keygen).")
        var key: String

        @Argument(help: "The bundle file; its exact bytes are signed.")
        var file: String

        func run() throws {
            try EdgectlCommand.reportingErrors {
                guard let pem = FileManager.default.contents(atPath: key) else {
                    throw EdgeError(.io, "--key: cannot read \(key)")
                }
                let signer = try Ed25519Key(pem: Array(pem), name: "--key")
                guard signer.canSign else {
                    throw EdgeError(.invalidConfig, "--key: \(key) is a public key; the private key signs")
                }
                guard let body = FileManager.default.contents(atPath: file) else {
                    throw EdgeError(.io, "\(file): cannot read the file")
                }
                print("ed25519=" + Data(try signer.sign(Array(body))).base64EncodedString())
            }
        }
    }
}
