import Foundation
import Logging
import TenantEdgeCore

/// State an origin before the store kept in files of `state_dir` (`invalidations.jsonl`,
/// `registry.json`, `erasures.json`, `bundles/<region>.signed`) is loaded into an empty store once,
/// in one transaction, and the files are removed, so an upgrade loses nothing and a second start
/// does not import again. A file that does not read stops the start, naming it, before anything
/// is stored.
enum FileStateImport {
    static func importIfPresent(
        from directory: String, into store: any OriginStore, regions: [String], logger: Logger
    ) async throws(EdgeError) {
        let log = directory + "/invalidations.jsonl"
        var documents: [String: String] = [:]
        var files: [String] = []
        for (name, document) in [("registry.json", StoreDocument.registry), ("erasures.json", StoreDocument.erasures)] {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            guard let text = String(data: data, encoding: .utf8) else { throw EdgeError(.io, "\(path): not UTF-8") }
            documents[document] = text
            files.append(path)
        }
        for region in regions {
            let path = "\(directory)/bundles/\(region).signed"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            guard let text = String(data: data, encoding: .utf8) else { throw EdgeError(.io, "\(path): not UTF-8") }
            documents[StoreDocument.bundle(region: region)] = text
            files.append(path)
        }
        var events: [InvalidationEvent] = []
        if let data = FileManager.default.contents(atPath: log) {
            // A last line without its newline was cut by a crash during its append: it was never
            // acknowledged (that waited for the fsync), so it is not an event.
            let complete = data.lastIndex(of: UInt8(ascii: "\n")).map { data[...$0] } ?? Data()
            for (index, line) in complete.split(separator: UInt8(ascii: "\n")).enumerated() {
                guard let json = JSONValue.parse(Array(line)), let event = try? InvalidationEvent(json: json),
                    events.last.map({ event.seq == $0.seq + 1 }) ?? (event.seq >= 1)
                else {
                    throw EdgeError(.io, "\(log):\(index + 1): not an invalidation event following the previous one")
                }
                events.append(event)
            }
            files.append(log)
        }
        guard !files.isEmpty else { return }
        let held = try await store.documents([StoreDocument.registry, StoreDocument.erasures])
        guard held.isEmpty, try await store.head() == 0 else {
            logger.warning(
                "state files left as they are: the store already holds state", metadata: ["files": "\(files)"])
            return
        }
        // Checked before anything is stored: a document that does not read stops the start now,
        // naming its file, instead of being imported and failing on every start after.
        if let registry = documents[StoreDocument.registry] {
            _ = try StableJSON.decode(
                TenantRegistry.RegistryFile.self, from: Array(registry.utf8), what: "\(directory)/registry.json")
        }
        if let erasures = documents[StoreDocument.erasures] {
            _ = try StableJSON.decode(
                [String: ErasureRecord].self, from: Array(erasures.utf8), what: "\(directory)/erasures.json")
        }
        try await store.importState(documents: documents, events: events)
        // Removed, not kept beside the store: the old registry holds sealed keys of tenants that
        // may be erased later, and crypto-shredding means no copy of them stays anywhere.
        for file in files {
            do { try FileManager.default.removeItem(atPath: file) } catch {
                throw EdgeError(.io, "\(file): imported, but it could not be removed")
            }
        }
        logger.notice(
            "state files imported into the store",
            metadata: ["files": "\(files.count)", "events": "\(events.count)", "head": "\(events.last?.seq ?? 0)"])
    }
}
