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
            // Except while holding, when an older bundle is exactly what must be seen (decision 63).
            let holding = runtime.awaitingBundle.load(ordering: .relaxed)
            if error.code == "stale_version" && (!error.older || actor == "origin:pull") && !holding { throw error }
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

    /// At start: applies the persisted bundle, verified again, if there is one. One whose signature
    /// no longer verifies (a torn write, a disk fault, an edit) is never trusted. With an origin to
    /// pull from, the node then holds (decision 63): it serves no tenant (`503 config_pending`,
    /// readiness false) until the origin's bundle is pulled or pushed and applied. The node file's
    /// tenants are no fallback: the lost bundle may have removed some of them. The torn file stays
    /// where it is until a verified bundle replaces it, so a restart while holding holds again. A
    /// bundle that verifies but cannot be applied (a wrong KEK, say) is an environment fault, not a
    /// torn file: start-up stops with the reason, as it does for any fault without an origin.
    func loadPersisted(canPull: Bool) throws(EdgeError) {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let bytes = Array(data)
        let newline = bytes.firstIndex(of: UInt8(ascii: "\n"))
        let header = newline.map { String(decoding: bytes[..<$0], as: UTF8.self) }
        let body = newline.map { Array(bytes[($0 + 1)...]) } ?? []
        do {
            try verify(body: body, signatureHeader: header)
        } catch {
            guard canPull, publicKey != nil else {
                throw EdgeError(.invalidConfig, "\(path): \(error.reason); move it away to start from the node file")
            }
            hold(reason: error.reason)
            return
        }
        do {
            _ = try applyChecked(body: body, signatureHeader: header, persist: false)
        } catch {
            throw EdgeError(.invalidConfig, "\(path): \(error.reason); move it away to start from the node file")
        }
    }

    /// The version a bundle must reach while holding: the last one this node persisted, from its own
    /// small file, so a replayed or lagging older bundle cannot take the torn one's place.
    private let holdingFloor = Atomic<Int>(0)

    private var versionPath: String { path + ".version" }

    private func hold(reason: String) {
        let floor =
            FileManager.default.contents(atPath: versionPath)
            .flatMap { Int(String(decoding: $0, as: UTF8.self)) }.map { max(0, $0) } ?? 0
        holdingFloor.store(floor, ordering: .relaxed)
        runtime.awaitingBundle.store(true, ordering: .releasing)
        runtime.audit.record(
            "persisted_bundle_untrusted", actor: "node", tenant: nil,
            details: ["reason": reason, "least_version": String(floor)])
        runtime.logger.error(
            "persisted config bundle not trusted; serving no tenant until the origin's bundle is applied",
            metadata: ["reason": "\(reason)", "least_version": "\(floor)"])
    }

    /// The signature over the exact body bytes, against the pinned key, before anything parses them.
    private func verify(body: [UInt8], signatureHeader: String?) throws(Rejection) {
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
    }

    private func applyChecked(body: [UInt8], signatureHeader: String?, persist: Bool) throws(Rejection) -> Int {
        try verify(body: body, signatureHeader: signatureHeader)
        let header = signatureHeader?.trimmingCharacters(in: .whitespaces) ?? ""
        return try applying.withLock { _ throws(Rejection) -> Int in
            let bundle: ConfigBundle
            let config: EdgeConfig
            do throws(EdgeError) { (bundle, config) = try ConfigBundle.read(body, base: runtime.config) } catch {
                throw Rejection(status: 400, code: "invalid_bundle", reason: error.message)
            }
            let running = runtime.table.version
            if runtime.awaitingBundle.load(ordering: .acquiring) {
                // Holding: the running table is the node file's; the floor is the torn bundle's version.
                let floor = holdingFloor.load(ordering: .relaxed)
                guard bundle.version >= floor else {
                    throw Rejection(
                        status: 409, code: "stale_version",
                        reason: "version \(bundle.version) is below \(floor), the last this node persisted",
                        older: true)
                }
            } else {
                guard bundle.version > running else {
                    throw Rejection(
                        status: 409, code: "stale_version",
                        reason: "version \(bundle.version) is not above the running \(running)",
                        older: bundle.version < running)
                }
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
                // The floor a later torn bundle holds at (`hold`); written after the bundle, so a crash
                // between the two leaves a floor one version low, never one too high.
                do throws(EdgeError) {
                    try DurableFile.write(Array(String(bundle.version).utf8), to: versionPath)
                } catch {
                    runtime.logger.warning("cannot record the bundle version", metadata: ["reason": "\(error.message)"])
                }
            }
            runtime.activate(prepared)
            // Under the lock: a push and a pull racing while holding must not both pass the floor.
            runtime.awaitingBundle.store(false, ordering: .releasing)
            return bundle.version
        }
    }
}
