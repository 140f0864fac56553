import Foundation
import TenantEdgeCore
import TenantEdgeNative

/// Publishing: the next bundle of every region built from the registry as stored, signed, and
/// stored with the registry's new version in one write.
extension TenantRegistry {
    /// Builds, signs and stores the next bundle of every region; the new version and each region's
    /// signed bundle (signature header value, body).
    func publish() async throws(EdgeError) -> (version: Int, bundles: [String: (signature: String, body: [UInt8])]) {
        guard let signingKey else {
            throw EdgeError(.invalidConfig, "signing_key_file: not set; the origin cannot sign bundles")
        }
        let (regions, keks, initialTenants, now) = (self.regions, self.keks, self.initialTenants, clock.now())
        typealias Published = (version: Int, bundles: [String: (signature: String, body: [UInt8])], state: State)
        let (published, _) = try await store.write(reading: [StoreDocument.registry], publishedAt: "") {
            stored throws(EdgeError) -> (StoreWrite, Published) in
            var state = try Self.decode(stored[StoreDocument.registry], initialTenants: initialTenants)
            let (version, overflow) = state.version.addingReportingOverflow(1)
            guard !overflow, version <= 1 << 53 else { throw EdgeError(.io, "the bundle version cannot count higher") }
            var bundles: [String: (String, [UInt8])] = [:]
            for region in regions {
                // A Redis URL may carry a password: sealed for the region when it has a KEK (a
                // sealing failure fails the publish rather than sending it in clear).
                var sealedURLs: [String: String] = [:]
                if let kek = keks[region.name] {
                    for tenant in state.tenants {
                        guard let url = tenant.redisURL else { continue }
                        let sealed = try KeyWrap.seal(
                            Array(url.utf8), kek: kek, aad: KeyWrap.redisURLAAD(tenant: tenant.id))
                        sealedURLs[tenant.id] = Data(sealed).base64EncodedString()
                    }
                }
                let tenants = state.tenants.map { tenant -> JSONValue in
                    var object = Self.json(tenant)
                    if let sealed = sealedURLs[tenant.id] {
                        object["redis_url"] = nil
                        object["redis_url_sealed"] = .string(sealed)
                    }
                    let keys = (state.keys[tenant.id] ?? []).compactMap { key in
                        key.wrapped[region.name].map { wrapped -> JSONValue in
                            .object([
                                "version": .integer(Int(key.version)),
                                "wrapped": .string(Data(wrapped).base64EncodedString()),
                            ])
                        }
                    }
                    if !keys.isEmpty { object["keys"] = .array(keys) }
                    if let naming = state.naming[tenant.id]?[region.name] {
                        object["naming_key"] = .string(Data(naming).base64EncodedString())
                    }
                    return .object(object)
                }
                let bundle = JSONValue.object([
                    "version": .integer(version), "issued_at": .string(AuditChain.timestamp(now)),
                    "regions": .array(regions.map(Self.json)), "tenants": .array(tenants),
                ])
                let encoded: String
                do throws(EdgeError) { encoded = try bundle.canonicalText } catch {
                    throw EdgeError(.io, "the bundle for \(region.name) could not be encoded; nothing published")
                }
                let body = Array(encoded.utf8)
                let signature = "ed25519=" + Data(try signingKey.sign(body)).base64EncodedString()
                bundles[region.name] = (signature, body)
            }
            state.version = version
            var documents = [StoreDocument.registry: try Self.encode(&state)]
            for (region, bundle) in bundles {
                documents[StoreDocument.bundle(region: region)] = bundle.0 + "\n" + Self.encodedBody(bundle.1)
            }
            return (StoreWrite(documents: documents), (version, bundles.mapValues { ($0.0, $0.1) }, state))
        }
        keep(published.state)
        bundles.withLock { stored in for (region, bundle) in published.bundles { stored[region] = bundle } }
        return (published.version, published.bundles)
    }

    /// A bundle body is canonical JSON, hence UTF-8 text, which is how documents are stored.
    static func encodedBody(_ body: [UInt8]) -> String { String(decoding: body, as: UTF8.self) }

    /// The latest signed bundle of a region, as stored.
    func bundle(region: String) -> (signature: String, body: [UInt8])? { bundles.withLock { $0[region] } }
}
