import ArgumentParser
import Foundation
import TenantEdgeCore
import TenantEdgeNative

extension EdgectlCommand {
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Audit log tools.", subcommands: [Verify.self])
    }

    /// `edgectl audit verify FILE`: exit 0 printing the number of entries, or exit 1 naming the
    /// first line that breaks the hash chain.
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check an audit log's hash chain.")

        @Argument(help: "The audit log (<state_dir>/audit.jsonl).")
        var file: String

        func run() throws {
            try EdgectlCommand.reportingErrors {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw EdgeError(.io, "\(file): cannot read the file")
                }
                switch AuditChain.verify(String(decoding: data, as: UTF8.self), sha256: { OpenSSL.sha256($0) }) {
                case .valid(let entries):
                    print("\(file): \(entries) entries, chain verified")
                case .broken(let line, let reason):
                    FileHandle.standardError.write(Data("\(file):\(line): chain broken: \(reason)\n".utf8))
                    throw ExitCode(1)
                }
            }
        }
    }
}
