import Testing

@testable import TenantEdgeCore

@Suite("Config validation")
struct ConfigValidationTests {
    static func base() -> EdgeConfig {
        var config = EdgeConfig()
        config.security.masterKeyFile = "/tmp/master.key"
        config.tenants = [TenantConfig(id: "acme", hosts: ["api.acme.test"], upstream: "http://127.0.0.1:18080")]
        return config
    }

    @Test func theBaseConfigIsValid() { #expect(Self.base().validate().isEmpty) }

    static func mistake(_ key: String, in c: inout EdgeConfig) {
        switch key {
        case "security.encryption": c.security.encryption = false
        case "security.master_key_file": c.security.masterKeyFile = nil
        case "listen.admin": c.listen.admin = c.listen.http
        case "listen.http": c.listen.http = "localhost"
        case "tenants[0].upstream": c.tenants[0].upstream = "ftp://x"
        case "tenants[0].id": c.tenants[0].id = "Bad:Id"
        case "tenants[1].hosts[0]":
            c.tenants.append(TenantConfig(id: "b", hosts: ["API.acme.test"], upstream: "http://h"))
        case "tenants": c.tenants[0].quotaBytes = c.cache.memoryBytes + 1
        case "cache.redis.url": c.cache.redis = .init(url: "http://x")
        case "node.region": c.node.region = "eu-west\r\nset-cookie: a=b"  // sent in X-Edge-Region as it is
        case "regions[0].name":
            c.regions = [RegionConfig(name: "us east", lat: 0, lon: 0, publicURL: "https://us.edge.test")]
        default: Issue.record("no mistake for \(key)")
        }
    }

    @Test(
        "each mistake is reported once, naming its key",
        arguments: [
            "security.encryption", "security.master_key_file", "listen.admin", "listen.http", "tenants[0].upstream",
            "tenants[0].id", "tenants[1].hosts[0]", "tenants", "cache.redis.url", "node.region", "regions[0].name",
        ])
    func reportsTheKey(_ key: String) {
        var config = Self.base()
        Self.mistake(key, in: &config)
        let problems = config.validate()
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.key == key)
        #expect(problems.first?.description.contains("\n") == false)
    }

    @Test func standardLevelAllowsEncryptionOff() {
        var config = Self.base()
        config.security.isolationLevel = .standard
        config.security.encryption = false
        #expect(config.validate().isEmpty)
    }

    @Test func quotasSplitWhatExplicitQuotasLeave() {
        var config = Self.base()
        config.cache.memoryBytes = 1000
        config.tenants[0].quotaBytes = 400
        config.tenants.append(TenantConfig(id: "b", hosts: ["b.test"], upstream: "http://h"))
        config.tenants.append(TenantConfig(id: "c", hosts: ["c.test"], upstream: "http://h"))
        #expect(config.effectiveQuotas() == ["acme": 400, "b": 300, "c": 300])
    }

    @Test func hostsResolveCaseInsensitivelyWithoutPort() {
        let directory = TenantDirectory(Self.base().tenants)
        #expect(directory.tenant(forHost: "API.Acme.TEST:8080")?.id == "acme")
        #expect(directory.tenant(forHost: "api.acme.test.")?.id == "acme")
        #expect(directory.tenant(forHost: "other.test") == nil)
    }
}
