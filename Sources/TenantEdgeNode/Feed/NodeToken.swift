import Foundation
import TenantEdgeCore

/// The node's bearer token for the origin (`origin.token_file`), read once at start; never logged.
enum NodeToken {
    static func read(_ origin: EdgeConfig.Origin) throws(EdgeError) -> String {
        guard let path = origin.tokenFile, let data = FileManager.default.contents(atPath: path) else {
            throw EdgeError(.invalidConfig, "origin.token_file: cannot read the node token")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw EdgeError(.invalidConfig, "origin.token_file: the file is empty") }
        return token
    }
}
