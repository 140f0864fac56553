import Foundation
import TenantEdgeNative
import TenantEdgeTestSupport
import Testing

@testable import TenantEdgeCore
@testable import TenantEdgeHTTP
@testable import TenantEdgeNode
@testable import TenantEdgeOrigin

/// The origin's fleet dashboard: the page, and its data after real nodes polled and a publish was
/// pushed to them.
@Suite("Fleet dashboard", .serialized)
struct FleetDashboardTests {
    static let adminToken = "fleet-admin-token"

    static func json(_ text: String) throws -> [String: JSONValue] {
        try #require(JSONValue.parse(Array(text.utf8))?.objectValue, "not a JSON object: \(text)")
    }

    @Test func theFleetShowsEachNodesPollCursorAndPublishes() async throws {
        try await OriginHarness.withFleet(adminToken: Self.adminToken) { origin, nodes in
            try await Self.check(origin, clocks: nodes.map(\.clock))
        }
    }

    /// `clocks`: the nodes' clocks, moved on while a feed backs off (the origin was down a moment).
    static func check(_ origin: OriginHarness, clocks: [ManualCacheClock]) async throws {
        let page = try await origin.call(.GET, "/v1/dashboard", token: "")
        #expect(page.status == 200 && page.body.contains("<html"))
        #expect(try await origin.call(.GET, "/v1/dashboard/data", token: OriginHarness.publisherToken).status == 403)
        #expect(try await origin.call(.GET, "/v1/dashboard/data", token: OriginHarness.nodeToken).status == 403)
        let tenant = #"{"hosts":["api.newco.test"],"upstream":"http://127.0.0.1:1","residency":["eu-west"]}"#
        #expect(try await origin.call(.PUT, "/v1/tenants/newco", token: Self.adminToken, body: tenant).status == 200)
        #expect(try await origin.call(.POST, "/v1/config/publish", token: Self.adminToken).status == 200)
        try await origin.publish(#"{"tenant":"newco","keys":["/x"]}"#)
        var rows: [String: [String: JSONValue]] = [:]
        var data: [String: JSONValue] = [:]
        try await waitUntil(seconds: 10, advancing: clocks[0], clocks[1]) {
            data = try Self.json(try await origin.call(.GET, "/v1/dashboard/data", token: Self.adminToken).body)
            let region = data["regions"]?.arrayValue?.first { $0.objectValue?["name"] == .string("eu-west") }
            rows = [:]
            for row in region?.objectValue?["nodes"]?.arrayValue ?? [] {
                if let object = row.objectValue, let id = object["id"]?.stringValue { rows[id] = object }
            }
            let head = data["origin"]?.objectValue?["head_seq"]
            return ["node-a", "node-b"].allSatisfy { rows[$0]?["cursor"] == head && head != .integer(0) }
        }
        for id in ["node-a", "node-b"] {
            #expect(rows[id]?["bundle_version"] == .integer(1) && rows[id]?["push"] == .string("ok"))
            #expect(rows[id]?["lag_events"] == .integer(0))
            if case .number(let ago) = rows[id]?["last_poll_s_ago"] {
                #expect(ago >= 0 && ago < 10)
            } else {
                Issue.record("\(id) has polled: \(String(describing: rows[id]))")
            }
        }
        let publish = try #require(data["publishes"]?.arrayValue?.first?.objectValue)
        #expect(publish["version"] == .integer(1))
        #expect(publish["nodes"] == .object(["node-a": .string("applied"), "node-b": .string("applied")]))
    }
}
