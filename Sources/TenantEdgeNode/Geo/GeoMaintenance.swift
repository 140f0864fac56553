import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Synchronization
import TenantEdgeCore

/// The background half of geo routing: every `geoip.watch_interval_s` it checks whether the
/// database file was replaced and reloads it; every `geoip.probe_interval_s` it asks each other
/// region's health endpoint (`public_url` + `/healthz`) whether it serves, and feeds the answers
/// to the region health state machine. Off the event loops: a Task per loop, probes through a
/// client of their own with a 2 s deadline each.
final class GeoMaintenance: Sendable {
    private let runtime: EdgeRuntime
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Probes fail at the first refused connect (async-http-client would otherwise retry until the
    /// deadline) and open a new connection each time, as Varnish's probes do: a probe tests that
    /// one can be made, and holds nothing open on the sibling.
    private let prober: HTTPClient?
    static let probeTimeout = TimeAmount.seconds(2)

    init(runtime: EdgeRuntime, group: any EventLoopGroup) {
        self.runtime = runtime
        guard runtime.config.geoip.probeIntervalSeconds > 0 else {
            prober = nil
            return
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: Self.probeTimeout, read: Self.probeTimeout))
        configuration.connectionPool = .init(idleTimeout: .seconds(1), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        prober = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }

    func start() {
        let geo = runtime.geo
        let config = runtime.config.geoip
        var started: [Task<Void, Never>] = []
        if geo.path != nil && config.watchIntervalSeconds > 0 {
            let interval = config.watchIntervalSeconds
            started.append(Task.detached {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(interval))
                    if Task.isCancelled { break }
                    geo.reload(force: false)
                }
            })
        }
        if config.probeIntervalSeconds > 0, prober != nil {
            let interval = config.probeIntervalSeconds
            started.append(Task.detached { [self] in
                while !Task.isCancelled {
                    await probeOnce()
                    try? await Task.sleep(for: .seconds(interval))
                }
            })
        }
        tasks.withLock { $0 = started }
    }

    /// Probes every other region with a health URL once, all at the same time.
    func probeOnce() async {
        let regions = runtime.table.regions
        let home = runtime.config.node.region
        runtime.geo.keepHealth(only: Set(regions.map(\.name)))
        await withTaskGroup(of: Void.self) { group in
            for region in regions where region.name != home {
                guard let url = region.healthURL else { continue }
                group.addTask { [runtime, self] in
                    runtime.geo.recordProbe(region: region.name, success: await probe(url))
                }
            }
        }
    }

    /// Whether `url` answers `GET` with a 2xx within the probe timeout.
    private func probe(_ url: String) async -> Bool {
        guard let prober, let request = try? HTTPClient.Request(url: url, method: .GET, headers: ["connection": "close"]) else { return false }
        do {
            let response = try await prober.execute(request: request, deadline: .now() + Self.probeTimeout).get()
            return (200..<300).contains(Int(response.status.code))
        } catch {
            return false
        }
    }

    func stop() async {
        let running = tasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in running { task.cancel() }
        for task in running { await task.value }
        try? await prober?.shutdown()
    }
}
