import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// Both dashboards in headless Chromium against running daemons with traffic from two tenants: the
/// check logs in with a token, reads the tenant table, charts and nodes back from the page, purges
/// through the page on a node and waits for both nodes of the region to acknowledge, and saves
/// screenshots at 1,280 and 390 px (`.build/dashboard-screenshots`).
@Suite("Dashboards in a browser", .serialized)
struct DashboardBrowserTests {
    /// Requests for both tenants on both nodes until cancelled.
    static func traffic(_ nodes: [EdgeHarness]) -> Task<Void, Never> {
        Task {
            var index = 0
            while !Task.isCancelled {
                index += 1
                for node in nodes {
                    _ = try? await node.get("/page/\(index % 7)")
                    _ = try? await node.get("/page/\(index % 5)", host: "api.globex.test")
                }
                try? await Task.sleep(for: .milliseconds(40))
            }
        }
    }

    @Test func theNodeDashboardShowsTenantsAndNodesAndPurgesThroughThePage() async throws {
        let url = try TestEnvironment.redisURL(database: 25)
        try await EdgeHarness.withTwoNodes(
            configure: { $0.cache.redis = .init(url: url, poolSize: 1, timeoutMs: 1000) },
            script: { request in
                .init(
                    headers: [("Cache-Control", "max-age=300")], body: "\(request.header("host") ?? "")|\(request.uri)")
            }
        ) { a, b in
            let traffic = Self.traffic([a, b])
            // The page computes rates from the node's clock (`time`): the test's clocks move with real time.
            let ticking = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    a.clock.advance(by: 0.1)
                    b.clock.advance(by: 0.1)
                }
            }
            defer {
                traffic.cancel()
                ticking.cancel()
            }
            let result = try await BrowserCheck.run([
                "node", "--url", "http://127.0.0.1:\(a.node.adminPort)", "--token", EdgeHarness.adminToken,
                "--tenants", "acme,globex", "--purge-tenant", "acme", "--purge-key", "/page/1",
                "--expect-nodes", "node-a,node-b", "--screenshots", BrowserCheck.screenshots, "--timeout", "30",
            ])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("OK:"))
            print(result.output)
        }
    }

    @Test func theFleetDashboardShowsEveryNodeAndThePublish() async throws {
        let admin = "browser-fleet-admin"
        try await OriginHarness.withFleet(adminToken: admin) { origin, nodes in
            let clocks = nodes.map(\.clock)
            let ticking = Task {  // the feeds back off on the nodes' clocks after the origin's restart
                while !Task.isCancelled {
                    for clock in clocks where clock.sleeperCount > 0 { clock.advance(by: 0.5) }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { ticking.cancel() }
            let tenant = #"{"hosts":["api.newco.test"],"upstream":"http://127.0.0.1:1","residency":["eu-west"]}"#
            #expect(try await origin.call(.PUT, "/v1/tenants/newco", token: admin, body: tenant).status == 200)
            #expect(try await origin.call(.POST, "/v1/config/publish", token: admin).status == 200)
            let result = try await BrowserCheck.run([
                "origin", "--url", origin.url, "--token", admin, "--ca", try TestEnvironment.require("TE_TEST_CA_FILE"),
                "--expect-nodes", "node-a,node-b", "--expect-publish", "--screenshots", BrowserCheck.screenshots,
                "--timeout", "30",
            ])
            #expect(result.status == 0, "\(result.output)")
            print(result.output)
        }
    }
}
