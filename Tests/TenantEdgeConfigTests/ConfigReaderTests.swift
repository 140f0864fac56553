import Foundation
import TenantEdgeCore
import Testing

@testable import TenantEdgeConfig

@Suite("YAML config and environment")
struct ConfigReaderTests {
    static let valid = """
        node: { id: eu-west-a, region: eu-west }
        listen: { http: "127.0.0.1:8080", admin: "127.0.0.1:9090" }
        cache: { memory_bytes: 1048576, default_ttl_s: 60 }
        security: { master_key_file: ./master.key }
        tenants:
          - id: acme
            hosts: [api.acme.test]
            upstream: "http://127.0.0.1:18080"
            quota_bytes: 65536
            geo_mode: hint
        """

    static func read(_ yaml: String, environment: [String: String] = [:]) -> (EdgeConfig, [ConfigProblem]) {
        var reader = ConfigReader()
        let config = reader.read(yaml: yaml, environment: environment, baseDirectory: "/etc/edge")
        return (config, reader.problems + (reader.problems.isEmpty ? config.validate() : []))
    }

    @Test func readsTheDocumentedShapeAndResolvesPathsAgainstTheFile() {
        let (config, problems) = Self.read(Self.valid)
        #expect(problems.isEmpty)
        #expect(config.node.id == "eu-west-a")
        #expect(config.cache.defaultTTLSeconds == 60)
        #expect(config.security.masterKeyFile == "/etc/edge/master.key")
        #expect(config.tenants.first?.quotaBytes == 65536)
        #expect(config.tenants.first?.geoMode == .hint)
        #expect(config.security.encryption, "encryption defaults to on")
    }

    @Test func readsReusePortAndRefusesAnythingButABoolean() {
        #expect(!Self.read(Self.valid).0.listen.reusePort, "one accepting socket by default")
        let listen = #"listen: { http: "127.0.0.1:8080", admin: "127.0.0.1:9090" }"#
        let on = Self.read(
            Self.valid.replacingOccurrences(of: listen, with: String(listen.dropLast()) + ", reuse_port: true }"))
        #expect(on.1.isEmpty && on.0.listen.reusePort, "\(on.1)")
        for value in ["yes please", "2", "\"\"", "[true]"] {
            let bad = Self.read(
                Self.valid.replacingOccurrences(
                    of: listen, with: String(listen.dropLast()) + ", reuse_port: \(value) }"))
            #expect(bad.1.first?.key == "listen.reuse_port", "\(value): \(bad.1)")
        }
    }

    @Test func readsLoggingAndTheTenantsObservabilitySettings() {
        let (config, problems) = Self.read(
            Self.valid
                + "\n    server_timing: true\n    access_log_sample: 0.25\nlogging: { format: json, level: debug }")
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.logging.format == .json && config.logging.level == .debug)
        #expect(config.tenants.first?.serverTiming == true && config.tenants.first?.accessLogSample == 0.25)
        let defaults = Self.read(Self.valid).0
        #expect(defaults.logging == LogSettings() && defaults.tenants.first?.accessLogSample == 0)
        for (yaml, key) in [
            ("logging: { format: xml }", "logging.format"), ("logging: { level: loud }", "logging.level"),
            ("logging: { colour: red }", "logging.colour"), ("logging: json", "logging"),
        ] {
            #expect(Self.read(Self.valid + "\n" + yaml).1.first?.key == key, "\(yaml)")
        }
        let traced = Self.read(
            Self.valid
                + "\ntracing: { otlp_endpoint: \"http://collector:4318\", service_name: edge-eu, sample_ratio: 0.1 }")
        #expect(traced.1.isEmpty && traced.0.tracing.otlpEndpoint == "http://collector:4318")
        #expect(traced.0.tracing.serviceName == "edge-eu" && traced.0.tracing.sampleRatio == 0.1)
        #expect(Self.read(Self.valid).0.tracing.otlpEndpoint == nil, "off by default")
        for (yaml, key) in [
            ("tracing: { otlp_endpoint: \"ftp://x\" }", "tracing.otlp_endpoint"),
            ("tracing: { otlp_endpoint: \"http://\" }", "tracing.otlp_endpoint"),
            ("tracing: { sample_ratio: 2 }", "tracing.sample_ratio"),
            ("tracing: { service_name: \"\" }", "tracing.service_name"),
            ("tracing: { exporter: zipkin }", "tracing.exporter"),
        ] {
            #expect(Self.read(Self.valid + "\n" + yaml).1.first?.key == key, "\(yaml)")
        }
        for sample in ["1.5", "-0.1", ".nan", "yes"] {
            let problems = Self.read(Self.valid + "\n    access_log_sample: \(sample)").1
            #expect(problems.first?.key == "tenants[0].access_log_sample", "\(sample): \(problems)")
        }
    }

    @Test func readsTheGeoKeysAndRegionFlags() {
        let (config, problems) = Self.read(
            Self.valid + """

                geoip: { database: ./city.mmdb, trusted_proxies: ["10.0.0.0/8", "2001:db8::/32"], watch_interval_s: 0,
                         probe_interval_s: 5, decision_cache_entries: 1000 }
                regions:
                  - { name: eu-west, lat: 53.3, lon: -6.3, public_url: "https://eu-west.{host}", countries: [IE, GB] }
                  - { name: us-east, lat: 38.9, lon: -77.0, public_url: "https://us-east.edge.test", down: true }
                """)
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.geoip.database == "/etc/edge/city.mmdb" && config.geoip.trustedProxies.count == 2)
        #expect(
            config.geoip.watchIntervalSeconds == 0 && config.geoip.probeIntervalSeconds == 5
                && config.geoip.decisionCacheEntries == 1000)
        #expect(config.regions.map(\.countries) == [["IE", "GB"], []] && config.regions.map(\.down) == [false, true])
        let (_, bad) = Self.read(
            Self.valid + "\ngeoip: { trusted_proxies: [\"10.0.0.0/40\"], decision_cache_entries: 1 }")
        #expect(
            bad.map(\.description) == [
                "geoip.decision_cache_entries: must be from 2 to 16777216",
                "geoip.trusted_proxies[0]: must be an address or CIDR, got '10.0.0.0/40'",
            ])
    }

    @Test func environmentOverridesTheFile() {
        let (config, problems) = Self.read(
            Self.valid,
            environment: [
                "TENANT_ISOLATION_LEVEL": "standard", "TENANT_ENCRYPTION_ENABLED": "false",
                "TENANT_MONITORING_ENABLED": "0",
                "TENANT_CACHE_TTL": "42",
            ])
        #expect(problems.isEmpty)
        #expect(config.security.isolationLevel == .standard)
        #expect(!config.security.encryption)
        #expect(!config.monitoring)
        #expect(config.cache.defaultTTLSeconds == 42)
    }

    @Test(
        "each bad file or variable gives one line naming the key",
        arguments: [
            (Self.valid + "\nbogus: 1", [:], "bogus: is not a known key"),
            (
                Self.valid.replacingOccurrences(of: "memory_bytes: 1048576", with: "memory_bytes: lots"), [:],
                "cache.memory_bytes: must be a whole number"
            ),
            (
                Self.valid.replacingOccurrences(of: "geo_mode: hint", with: "geo_mode: teleport"), [:],
                "tenants[0].geo_mode: must be one of"
            ),
            (
                Self.valid.replacingOccurrences(
                    of: "upstream: \"http://127.0.0.1:18080\"", with: "upstream: \"gopher://x\""), [:],
                "tenants[0].upstream:"
            ),
            (
                Self.valid, ["TENANT_ENCRYPTION_ENABLED": "false"],
                "security.encryption: false is refused under security.isolation_level: strict"
            ),
            (Self.valid, ["TENANT_CACHE_TTL": "soon"], "TENANT_CACHE_TTL: must be a whole number"),
            (Self.valid, ["TENANT_ISOLATION_LEVEL": "loose"], "TENANT_ISOLATION_LEVEL: must be strict or standard"),
            ("node: [unclosed", [:], "config: is not valid YAML"),
            (
                Self.valid.replacingOccurrences(of: "    hosts: [api.acme.test]\n", with: ""), [:],
                "tenants[0].hosts: is required"
            ),
        ] as [(String, [String: String], String)])
    func reportsOneLine(_ yaml: String, _ environment: [String: String], _ expected: String) {
        let (_, problems) = Self.read(yaml, environment: environment)
        let lines = problems.map(\.description)
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.hasPrefix(expected) == true, "\(lines)")
    }

    @Test func loadReportsAnUnreadableFileByName() {
        #expect(throws: EdgeError.self) { try ConfigReader.load(path: "/nonexistent/edge.yaml") }
    }

    @Test func adminTokensFileIsValidated() throws {
        let tokens = try AdminTokensReader.parse(
            "- {sha256: \"\(String(repeating: "ab", count: 32))\", scopes: [purge], tenants: [acme]}", source: "f")
        #expect(tokens.tokens.count == 1)
        for bad in [
            "- {sha256: zz, scopes: [purge], tenants: [a]}",
            "- {sha256: \"\(String(repeating: "ab", count: 32))\", scopes: [fly], tenants: [a]}",
            "{not: a list}",
        ] {
            #expect(throws: EdgeError.self) { try AdminTokensReader.parse(bad, source: "f") }
        }
    }
}
