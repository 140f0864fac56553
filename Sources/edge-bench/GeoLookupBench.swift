import Foundation
import Logging
import TenantEdgeCore
import TenantEdgeNative
import TenantEdgeNode
import TenantEdgeOrigin

/// `edge-bench geo-lookups MMDB [SECONDS] [WORKING_SET]`: GeoIP lookups per second on one thread,
/// on random IPv4 addresses:
/// - `raw`: the libmaxminddb adapter alone, from text as `mmdblookup --benchmark` starts (parse,
///   `MMDB_lookup_sockaddr`, then country, continent, latitude, longitude);
/// - `decide-uncached`: the node's whole decision (lookup, region choice) with every address new,
///   from a parsed address as the socket and the `X-Forwarded-For` walk give it;
/// - `decide-cached`: the same over WORKING_SET addresses that repeat, answered by the decision cache.
/// Prints `name lookups_per_second` lines.
enum GeoLookupBench {
    static func run(_ arguments: [String]) throws {
        guard arguments.count >= 3 else { EdgeBench.usage() }
        let path = arguments[2]
        let seconds = arguments.count > 3 ? Double(arguments[3]) ?? 2 : 2
        let workingSet = arguments.count > 4 ? Int(arguments[4]) ?? 10_000 : 10_000
        var generator = SeededGenerator(seed: 0x7e17_edce)  // every run looks up the same addresses
        let values = (0..<1_000_000).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
        let texts = values.map { "\($0 >> 24).\(($0 >> 16) & 0xff).\(($0 >> 8) & 0xff).\($0 & 0xff)" }
        let addresses = values.map { IPAddress(ipv4: $0) }
        let database = try GeoIPDatabase(path: path)
        var found = 0
        print(
            "raw",
            rate(seconds) { index in
                if (try? database.lookup(texts[index % texts.count])) != nil { found += 1 }
            })
        var config = EdgeConfig()
        config.node.region = "eu-west"
        config.geoip.database = path
        config.regions = [
            RegionConfig(name: "eu-west", lat: 53.35, lon: -6.26, publicURL: "https://eu-west.test"),
            RegionConfig(name: "eu-central", lat: 50.11, lon: 8.68, publicURL: "https://eu-central.test"),
            RegionConfig(name: "us-east", lat: 38.9, lon: -77.0, publicURL: "https://us-east.test"),
            RegionConfig(name: "ap-northeast", lat: 35.68, lon: 139.69, publicURL: "https://ap-northeast.test"),
        ]
        var tenant = TenantConfig(id: "acme", hosts: ["api.acme.test"], upstream: "http://127.0.0.1:1")
        tenant.residency = ["eu-west", "eu-central"]
        let regions = config.regions
        let uncached = try GeoRouting(config: config, logger: Logger(label: "bench"))
        print(
            "decide-uncached",
            rate(seconds) { index in
                _ = uncached.decide(address: addresses[index % addresses.count], tenant: tenant, regions: { regions })
            })
        let cached = try GeoRouting(config: config, logger: Logger(label: "bench"))
        for index in 0..<workingSet {
            _ = cached.decide(address: addresses[index], tenant: tenant, regions: { regions })
        }
        print(
            "decide-cached",
            rate(seconds) { index in
                _ = cached.decide(address: addresses[index % workingSet], tenant: tenant, regions: { regions })
            })
        FileHandle.standardError.write(Data("found \(found) of the random addresses\n".utf8))
    }

    /// Calls `body` with 0, 1, 2, … for `seconds`; returns calls per second.
    static func rate(_ seconds: Double, _ body: (Int) -> Void) -> String {
        let clock = ContinuousClock()
        let started = clock.now
        var calls = 0
        while true {
            for _ in 0..<1000 {
                body(calls)
                calls += 1
            }
            let elapsed = clock.now - started
            let done = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if done >= seconds { return String(format: "%.0f", Double(calls) / done) }
        }
    }
}
