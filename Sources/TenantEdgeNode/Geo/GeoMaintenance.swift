import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TenantEdgeCore

/// The background half of geo routing: every `geoip.watch_interval_s` it checks whether the
/// database file was replaced and reloads it; every `geoip.probe_interval_s` it asks each other
/// region's health endpoint (`public_url` + `/healthz`) whether it serves, and feeds the answers
/// to the region health state machine. A `Service` of the node's group, off the event loops; the
/// intervals wait on the injected clock; probes go through a client of their own with a 2 s
/// deadline each.
final class GeoMaintenance: Service, Sendable {
    private let runtime: EdgeRuntime
    /// Probes fail at the first refused connect (async-http-client would otherwise retry until the
    /// deadline) and open a new connection each time, as Varnish's probes do: a probe tests that
    /// one can be made, and holds nothing open on the sibling.
    static let probeTimeout = TimeAmount.seconds(2)

    init(runtime: EdgeRuntime, group: any EventLoopGroup) {
        self.runtime = runtime
        self.group = group
    }

    private let group: any EventLoopGroup

    /// Made when the service runs and shut down when it ends, so no client outlives the node.
    private static func makeProber(group: any EventLoopGroup) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: Self.probeTimeout, read: Self.probeTimeout))
        configuration.connectionPool = .init(idleTimeout: .seconds(1), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }

    /// Watches and probes until the group shuts down gracefully; waits on the injected clock.
    func run() async throws {
        let geo = runtime.geo
        let config = runtime.config.geoip
        let clock = runtime.clock
        let prober = config.probeIntervalSeconds > 0 ? Self.makeProber(group: self.group) : nil
        await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                if geo.path != nil && config.watchIntervalSeconds > 0 {
                    let interval = Double(config.watchIntervalSeconds)
                    group.addTask {
                        while (try? await clock.sleep(seconds: interval)) != nil { geo.reload(force: false) }
                    }
                }
                if let prober {
                    let interval = Double(config.probeIntervalSeconds)
                    group.addTask { [self] in
                        repeat { await probeOnce(prober) } while (try? await clock.sleep(seconds: interval)) != nil
                    }
                }
                // Nothing to do (or all done): stay up until shutdown, as a service of the group must.
                group.addTask { try? await gracefulShutdown() }
                await group.waitForAll()
            }
        }
        try? await prober?.shutdown()
    }

    /// Probes every other region with a health URL once, all at the same time.
    func probeOnce(_ prober: HTTPClient) async {
        let regions = runtime.table.regions
        let home = runtime.config.node.region
        runtime.geo.keepHealth(only: Set(regions.map(\.name)))
        await withTaskGroup(of: Void.self) { group in
            for region in regions where region.name != home {
                guard let url = region.healthURL else { continue }
                group.addTask { [runtime, self] in
                    runtime.geo.recordProbe(region: region.name, success: await probe(url, with: prober))
                }
            }
        }
    }

    /// Whether `url` answers `GET` with a 2xx within the probe timeout.
    private func probe(_ url: String, with prober: HTTPClient) async -> Bool {
        guard let request = try? HTTPClient.Request(url: url, method: .GET, headers: ["connection": "close"]) else {
            return false
        }
        do {
            let response = try await prober.execute(request: request, deadline: .now() + Self.probeTimeout).get()
            return (200..<300).contains(Int(response.status.code))
        } catch {
            return false
        }
    }
}
