import Foundation
import Synchronization
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

/// The node's side of config pushes: `PUT /_edge/config` and the bundle
/// persisted in `<state_dir>/bundle.signed`.
///
/// Order of checks, each refusing with a reason and changing nothing: the signature over the exact
/// body bytes against the pinned Ed25519 key, before anything parses the body; the bundle read and
/// validated whole; its version above the running one (`409`); the new tenant set built. Then the
/// bundle is persisted (write, fsync, rename, fsync of the directory) and only then swapped in, so
/// a node killed at any point restarts with the old bundle or the new one, whole.
final class ConfigBundleGate: Sendable {
    private let runtime: EdgeRuntime
    private let publicKey: Ed25519Key?
    let path: String
    private let applying = Mutex(())  // one bundle at a time, from version check to swap

    struct Rejection: Error {
        var status: Int
        var code: String
        var reason: String
        /// A bundle older than the one running: a replay, unlike a push of the version already
        /// running (an origin's retry after a slow answer, or a pull that came first).
        var older = false
    }

    init(runtime: EdgeRuntime) throws(EdgeError) {
        self.runtime = runtime
        path = runtime.config.stateDir + "/bundle.signed"
        if let keyPath = runtime.config.security.configPublicKey, !keyPath.isEmpty {
            guard let pem = FileManager.default.contents(atPath: keyPath) else {
                throw EdgeError(.invalidConfig, "security.config_public_key: cannot read \(keyPath)")
            }
            publicKey = try Ed25519Key(pem: Array(pem), name: "security.config_public_key")
        } else {
            publicKey = nil
        }
    }

    /// Verifies, validates, persists and swaps in a pushed bundle; its version, or why not. Blocks on
    /// the disk: call it off the event loops.
    func apply(body: [UInt8], signatureHeader: String?, actor: String) throws(Rejection) -> Int {
        do {
            let version = try applyChecked(body: body, signatureHeader: signatureHeader, persist: true)
            runtime.metrics.recordBundle(result: "applied")
            runtime.audit.record("config_applied", actor: actor, tenant: nil, details: ["version": String(version)])
            runtime.logger.info("config bundle applied", metadata: ["version": "\(version)"])
            return version
        } catch {
            // The version already running pushed again, or any version a pull found (a replica may lag
            // behind a push): not news, not a rejection.
            if error.code == "stale_version" && (!error.older || actor == "origin:pull") { throw error }
            runtime.metrics.recordBundle(result: Self.metricResult(of: error.code))
            // A bad signature or a replayed older bundle is someone else's doing, not a config mistake.
            if error.code == "bad_signature" || error.code == "stale_version" {
                runtime.events.record(
                    error.code == "bad_signature" ? "bad_signature" : "stale_config_version", tenant: "-",
                    source: actor, detail: error.reason)
            }
            runtime.audit.record(
                "config_rejected", actor: actor, tenant: nil, details: ["reason": error.reason, "code": error.code])
            runtime.logger.warning(
                "config bundle rejected", metadata: ["code": "\(error.code)", "reason": "\(error.reason)"])
            throw error
        }
    }

    /// The `result` label of `edge_config_bundles_total` for a rejection's code.
    static func metricResult(of code: String) -> String {
        switch code {
        case "bad_signature": "bad_signature"
        case "stale_version": "stale_version"
        default: "invalid"
        }
    }

    /// At start: applies the persisted bundle, verified again, if there is one. A persisted bundle
    /// that no longer verifies or parses stops start-up with the reason (it was written whole, so
    /// that means it was changed on disk).
    func loadPersisted() throws(EdgeError) {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let bytes = Array(data)
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            throw EdgeError(.invalidConfig, "\(path): not a signed bundle; move it away to start from the node file")
        }
        let header = String(decoding: bytes[..<newline], as: UTF8.self)
        do {
            _ = try applyChecked(body: Array(bytes[(newline + 1)...]), signatureHeader: header, persist: false)
        } catch {
            throw EdgeError(.invalidConfig, "\(path): \(error.reason); move it away to start from the node file")
        }
    }

    private func applyChecked(body: [UInt8], signatureHeader: String?, persist: Bool) throws(Rejection) -> Int {
        guard let publicKey else {
            throw Rejection(
                status: 403, code: "config_push_disabled", reason: "security.config_public_key is not set on this node")
        }
        guard let header = signatureHeader?.trimmingCharacters(in: .whitespaces), header.hasPrefix("ed25519="),
            let signature = Data(base64Encoded: String(header.dropFirst("ed25519=".count)))
        else {
            throw Rejection(
                status: 401, code: "bad_signature", reason: "Edge-Signature must be ed25519=<base64 signature>")
        }
        guard publicKey.verify(signature: Array(signature), message: body) else {
            throw Rejection(
                status: 401, code: "bad_signature", reason: "the signature does not verify against the pinned key")
        }
        return try applying.withLock { _ throws(Rejection) -> Int in
            let bundle: ConfigBundle
            let config: EdgeConfig
            do throws(EdgeError) { (bundle, config) = try ConfigBundle.read(body, base: runtime.config) } catch {
                throw Rejection(status: 400, code: "invalid_bundle", reason: error.message)
            }
            let running = runtime.table.version
            guard bundle.version > running else {
                throw Rejection(
                    status: 409, code: "stale_version",
                    reason: "version \(bundle.version) is not above the running \(running)",
                    older: bundle.version < running)
            }
            let prepared: TenantTable
            do throws(EdgeError) { prepared = try runtime.prepare(config, version: bundle.version) } catch {
                throw Rejection(status: 400, code: "invalid_bundle", reason: error.message)
            }
            if persist {
                do throws(EdgeError) { try DurableFile.write(Array((header + "\n").utf8) + body, to: path) } catch {
                    runtime.discard(prepared)
                    throw Rejection(status: 500, code: "persist_failed", reason: error.message)
                }
            }
            runtime.activate(prepared)
            return bundle.version
        }
    }
}
