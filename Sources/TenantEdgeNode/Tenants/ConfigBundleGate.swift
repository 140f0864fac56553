import Foundation
import Synchronization
import TenantEdgeConfig
import TenantEdgeCore
import TenantEdgeHTTP
import TenantEdgeNative

#if canImport(Glibc)
    import Glibc
#endif

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
            runtime.awaitingBundle.store(false, ordering: .releasing)
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

    /// At start: applies the persisted bundle, verified again, if there is one. One that no longer
    /// verifies or parses (a torn write, a disk fault, an edit) is never trusted. With an origin to
    /// pull from (`canPull`), it is moved aside to `bundle.signed.untrusted` and the node starts
    /// serving no tenant at all (`503 config_pending`, readiness false) until the origin's current
    /// bundle is pulled and applied: the node file's tenants may include ones the lost bundle had
    /// removed, so they are not a safe fallback. Without an origin, start-up stops with the reason.
    func loadPersisted(canPull: Bool) throws(EdgeError) {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let bytes = Array(data)
        let reason: String
        if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            let header = String(decoding: bytes[..<newline], as: UTF8.self)
            do {
                _ = try applyChecked(body: Array(bytes[(newline + 1)...]), signatureHeader: header, persist: false)
                return
            } catch {
                reason = error.reason
            }
        } else {
            reason = "not a signed bundle"
        }
        guard canPull else {
            throw EdgeError(.invalidConfig, "\(path): \(reason); move it away to start from the node file")
        }
        try holdForOrigin(reason: reason)
    }

    /// Moves the untrusted bundle aside and empties the tenant set until the origin's bundle applies.
    private func holdForOrigin(reason: String) throws(EdgeError) {
        let aside = path + ".untrusted"
        _ = unlink(aside)
        guard rename(path, aside) == 0 else {
            throw EdgeError(.io, "\(path): \(reason), and it cannot be moved aside to \(aside)")
        }
        var empty = runtime.config
        empty.tenants = []
        runtime.activate(try runtime.prepare(empty, version: 0))
        runtime.awaitingBundle.store(true, ordering: .releasing)
        runtime.audit.record(
            "persisted_bundle_untrusted", actor: "node", tenant: nil, details: ["reason": reason, "moved_to": aside])
        runtime.logger.error(
            "persisted config bundle not trusted; serving no tenant until the origin's bundle is pulled",
            metadata: ["reason": "\(reason)", "moved_to": "\(aside)"])
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
