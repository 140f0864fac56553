import AsyncHTTPClient
import Foundation
import NIOCore
import TenantEdgeCore

/// Pushes a region's signed bundle to each of its nodes' admin `PUT /_edge/config`, with the
/// node's admin token, up to three attempts with backoff (0.2 s, then 0.4 s). A node that already
/// runs that very version answers `409`, which counts as delivered; a node that runs a newer one
/// (the origin's state went back: a restore, lost files) is reported as `ahead: N`, never as
/// delivered, so the origin can publish above it. A node that stays unreachable gets the bundle
/// when it next pulls it (at start and on every feed reconnect).
struct BundlePusher: Sendable {
    let client: HTTPClient
    /// The backoff between attempts waits on it.
    let clock: any CacheClock
    static let attempts = 3

    /// Each node's outcome: "ok", or the reason of the last failure.
    func push(version: Int, signature: String, body: [UInt8], to nodes: [OriginConfig.Node]) async -> [String: String] {
        await withTaskGroup(of: (String, String).self) { group in
            for node in nodes {
                group.addTask { (node.id, await push(version: version, signature: signature, body: body, to: node)) }
            }
            var outcomes: [String: String] = [:]
            for await (id, outcome) in group { outcomes[id] = outcome }
            return outcomes
        }
    }

    /// The version a node said it runs in its `409` ("… not above the running N"), if any.
    /// Only a node's own `stale_version` answer counts, and only a version a bundle can have
    /// (up to 2^53): a larger one, from whatever answers at that URL, must not push the origin's
    /// version to where it can no longer count up.
    static func runningVersion(inConflict answer: String) -> Int? {
        guard answer.contains("\"stale_version\""), let range = answer.range(of: "the running ") else { return nil }
        let digits = answer[range.upperBound...].prefix { ("0"..."9").contains($0) }
        guard (1...16).contains(digits.count), let running = Int(digits), running <= 1 << 53 else { return nil }
        return running
    }

    private func push(version: Int, signature: String, body: [UInt8], to node: OriginConfig.Node) async -> String {
        guard let tokenData = FileManager.default.contents(atPath: node.adminTokenFile) else {
            return "error: cannot read admin_token_file"
        }
        let token = String(decoding: tokenData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        var outcome = "error: not attempted"
        for attempt in 0..<Self.attempts {
            if attempt > 0 { try? await clock.sleep(seconds: 0.2 * Double(1 << (attempt - 1))) }
            var request = HTTPClientRequest(url: node.adminURL + "/_edge/config")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Edge-Signature", value: signature)
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await client.execute(request, timeout: .seconds(5))
                let answer = String(buffer: try await response.body.collect(upTo: 64 << 10))
                switch response.status.code {
                case 200: return "ok"
                case 409:
                    guard let running = Self.runningVersion(inConflict: answer), running > version else { return "ok" }
                    return "ahead: \(running)"
                case 400, 401, 403: return "error: \(response.status.code) \(answer)"  // retrying will not help
                default: outcome = "error: \(response.status.code) \(answer)"
                }
            } catch {
                outcome = "error: unreachable"
            }
        }
        return outcome
    }
}
