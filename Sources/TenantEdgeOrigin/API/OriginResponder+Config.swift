import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TenantEdgeCore
import TenantEdgeHTTP

/// The origin's registry and bundle calls: tenants in and out, publish (build, sign, push), pull.
extension OriginResponder {
    func tenants(_ request: EdgeRequest, id: String, on eventLoop: any EventLoop) -> ResponderResult {
        guard isAdminRequest(request) else { return .now(unauthorized(request, "an admin token is required")) }
        guard EdgeConfig.isIdentifier(id) else {
            return .now(
                .jsonError(.badRequest, code: "bad_request", detail: "tenant id must be 1-63 of a-z, 0-9, - or _"))
        }
        let (registry, log, erasures, audit, actor) = (
            self.registry, self.log, self.erasures, self.audit, self.actor(request)
        )
        let body = request.body.map { Array($0.readableBytesView) } ?? []
        let method = request.head.method
        return .later(
            eventLoop.makeFutureWithTask { () -> EdgeResponse in
                do throws(EdgeError) {
                    if method == .PUT {
                        try await registry.put(id: id, json: body)
                        audit.record("tenant_put", actor: actor, tenant: id)
                        return .json(.ok, #"{"tenant":\#(JSONText.quote(id))}"#)
                    }
                    // Erasure: every node drops the tenant's data now; the next bundle drops the tenant and
                    // its keys, and each node confirms when its copy is gone. Registry, ledger and the
                    // purge change in one write.
                    guard let event = try await registry.remove(id: id, erasureBy: actor, ledger: erasures) else {
                        return .jsonError(.notFound, code: "unknown_tenant")
                    }
                    try? await log.catchUp()  // the purge is durable; long polls learn of it now
                    audit.record("tenant_erased", actor: actor, tenant: id, details: ["seq": String(event.seq)])
                    return .json(.ok, #"{"erased":\#(JSONText.quote(id)),"seq":\#(event.seq)}"#)
                } catch {
                    return .jsonError(
                        error.code == .badRequest ? .badRequest : .internalServerError, code: error.code.description,
                        detail: error.message)
                }
            })
    }

    /// `POST /v1/tenants/<id>/keys/rotate`: a new key version, current for writes after the next publish.
    func rotateKey(_ request: EdgeRequest, id: String, on eventLoop: any EventLoop) -> ResponderResult {
        guard isAdminRequest(request) else { return .now(unauthorized(request, "an admin token is required")) }
        let (registry, audit, actor) = (self.registry, self.audit, self.actor(request))
        return .later(
            eventLoop.makeFutureWithTask { () -> EdgeResponse in
                do throws(EdgeError) {
                    let version = try await registry.rotateKey(id: id)
                    audit.record("key_rotated", actor: actor, tenant: id, details: ["version": String(version)])
                    return .json(.ok, #"{"tenant":\#(JSONText.quote(id)),"key_version":\#(version)}"#)
                } catch {
                    return .jsonError(
                        error.code == .unknownTenant ? .notFound : .internalServerError, code: error.code.description,
                        detail: error.message)
                }
            })
    }

    /// `DELETE /v1/tenants/<id>/keys/<V>`: retires a key version (crypto-shredding after the next publish).
    func retireKey(_ request: EdgeRequest, id: String, version: UInt32?, on eventLoop: any EventLoop) -> ResponderResult
    {
        guard isAdminRequest(request) else { return .now(unauthorized(request, "an admin token is required")) }
        guard let version else {
            return .now(.jsonError(.badRequest, code: "bad_request", detail: "the key version must be a number"))
        }
        let (registry, audit, actor) = (self.registry, self.audit, self.actor(request))
        return .later(
            eventLoop.makeFutureWithTask { () -> EdgeResponse in
                do throws(EdgeError) {
                    try await registry.retireKey(id: id, version: version)
                    audit.record("key_retired", actor: actor, tenant: id, details: ["version": String(version)])
                    return .json(.ok, #"{"tenant":\#(JSONText.quote(id)),"retired":\#(version)}"#)
                } catch {
                    let status: HTTPResponseStatus =
                        error.code == .unknownTenant
                        ? .notFound : error.code == .badRequest ? .conflict : .internalServerError
                    return .jsonError(status, code: error.code.description, detail: error.message)
                }
            })
    }

    func publishConfig(_ request: EdgeRequest, on eventLoop: any EventLoop) -> ResponderResult {
        guard isAdminRequest(request) else { return .now(unauthorized(request, "an admin token is required")) }
        let (registry, pusher, regions, audit, actor, fleet, clock) = (
            self.registry, self.pusher, config.regions, self.audit, self.actor(request), self.fleet, self.clock
        )
        let promise = eventLoop.makePromise(of: EdgeResponse.self)
        promise.completeWithTask {
            var published: (version: Int, bundles: [String: (signature: String, body: [UInt8])]) = (0, [:])
            var pushed: [String: String] = [:]
            // At most twice: when a node runs a newer version than this origin (its state went back),
            // the version is raised above the newest seen and the bundle published again.
            for round in 0..<2 {
                do throws(EdgeError) { published = try await registry.publish() } catch {
                    return .jsonError(.internalServerError, code: error.code.description, detail: error.message)
                }
                pushed = [:]
                for region in regions {
                    guard let bundle = published.bundles[region.region.name] else { continue }
                    pushed.merge(
                        await pusher.push(
                            version: published.version, signature: bundle.signature, body: bundle.body,
                            to: region.nodes)
                    ) { $1 }
                }
                let ahead = pushed.values.compactMap { $0.hasPrefix("ahead: ") ? Int($0.dropFirst(7)) : nil }.max()
                guard round == 0, let ahead else { break }
                do throws(EdgeError) { try await registry.raiseVersion(toAtLeast: ahead) } catch {
                    return .jsonError(.internalServerError, code: error.code.description, detail: error.message)
                }
                audit.record("config_version_raised", actor: actor, tenant: nil, details: ["above": String(ahead)])
            }
            audit.record("config_published", actor: actor, tenant: nil, details: ["version": String(published.version)])
            fleet.published(
                version: published.version, at: clock.now(), outcomes: pushed,
                expected: regions.filter { published.bundles[$0.region.name] != nil }.flatMap { $0.nodes.map(\.id) })
            let outcomes = pushed.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(pushed[$0]!))" }.joined(
                separator: ",")
            return .json(.ok, #"{"version":\#(published.version),"pushed":{\#(outcomes)}}"#)
        }
        return .later(promise.futureResult)
    }

    /// `POST /v1/erasures/<tenant>` `{"node":"<id>"}` from a node: its copy of the tenant is gone.
    /// A node's confirmation that it erased a tenant. It counts only from a token bound to that very
    /// node (`tokens.nodes[].node`): a region's shared token, or a sibling's, cannot vouch for it.
    func confirmErasure(_ request: EdgeRequest, tenant: String, on eventLoop: any EventLoop) -> ResponderResult {
        guard let token = nodeToken(request) else { return .now(unauthorized(request, "a node token is required")) }
        let body = request.body.map { Array($0.readableBytesView) } ?? []
        guard body.count <= 1024, let node = JSONValue.parse(body)?.objectValue?["node"]?.stringValue,
            EdgeConfig.isIdentifier(node)
        else {
            return .now(.jsonError(.badRequest, code: "bad_request", detail: "body must be {\"node\":\"<node id>\"}"))
        }
        guard let bound = token.node, bound == node else {
            return .now(
                .jsonError(
                    .forbidden, code: "forbidden", detail: "only a token bound to that node may confirm its erasure"))
        }
        let (erasures, audit) = (self.erasures, self.audit)
        return .later(
            eventLoop.makeFutureWithTask { () -> EdgeResponse in
                do throws(EdgeError) {
                    guard try await erasures.confirmed(tenant: tenant, node: node) else {
                        return .jsonError(.notFound, code: "no_erasure")
                    }
                    audit.record("erasure_confirmed", actor: "node:\(node)", tenant: tenant)
                    return .json(.ok, #"{"confirmed":true}"#)
                } catch {
                    return .jsonError(.internalServerError, code: error.code.description, detail: error.message)
                }
            })
    }

    func pullBundle(_ request: EdgeRequest, region: String?) -> EdgeResponse {
        guard let allowed = nodeRegion(request) else { return unauthorized(request, "a node token is required") }
        guard let region, region == allowed else {
            return .jsonError(.forbidden, code: "forbidden", detail: "this node token is for region '\(allowed)'")
        }
        guard let bundle = registry.bundle(region: region) else {
            return .jsonError(.notFound, code: "no_bundle", detail: "nothing published for '\(region)' yet")
        }
        if let poller = fleetKey(request) {
            fleet.pulled(node: poller.node, region: region, version: registry.publishedVersion)
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "edge-signature", value: bundle.signature)
        return EdgeResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: bundle.body))
    }
}
