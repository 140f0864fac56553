import Testing

@testable import TenantEdgeCore

@Suite("Region choice by distance and residency")
struct RegionRouterTests {
    static let regions = [
        RegionConfig(name: "eu-west", lat: 53.35, lon: -6.26, publicURL: "https://eu-west.test"),  // Dublin
        RegionConfig(name: "eu-central", lat: 50.11, lon: 8.68, publicURL: "https://eu-central.test"),  // Frankfurt
        RegionConfig(name: "us-east", lat: 38.9, lon: -77.0, publicURL: "https://us-east.test"),  // Washington
    ]
    static let anywhere = TenantConfig(id: "any", hosts: ["a.test"], upstream: "http://a")
    static var euOnly: TenantConfig {
        var tenant = TenantConfig(id: "eu", hosts: ["e.test"], upstream: "http://e")
        tenant.residency = ["eu-west", "eu-central"]
        return tenant
    }
    static let seattle = RegionRouter.Location(country: "US", continent: "NA", latitude: 47.6034, longitude: -122.3414)

    @Test func greatCircleDistancesAreRight() {
        // London to Paris is about 344 km; Dublin to Frankfurt about 1,090 km.
        #expect(abs(RegionRouter.distanceKm(51.5074, -0.1278, 48.8566, 2.3522) - 344) < 3)
        #expect(abs(RegionRouter.distanceKm(53.35, -6.26, 50.11, 8.68) - 1090) < 10)
        #expect(RegionRouter.distanceKm(10, 20, 10, 20) == 0)
    }

    @Test func theNearestAllowedHealthyRegionWins() {
        let open = RegionRouter.choose(
            location: Self.seattle, tenant: Self.anywhere, regions: Self.regions, healthy: nil, home: "eu-west")
        #expect(open.region == "us-east" && open.reason == "nearest")
        let resident = RegionRouter.choose(
            location: Self.seattle, tenant: Self.euOnly, regions: Self.regions, healthy: nil, home: "us-east")
        #expect(resident.region == "eu-west", "an EU-only tenant never goes to us-east, however near")
        let unhealthy = RegionRouter.choose(
            location: Self.seattle, tenant: Self.euOnly, regions: Self.regions,
            healthy: ["eu-central", "us-east"], home: "us-east")
        #expect(unhealthy.region == "eu-central", "the nearest healthy allowed region")
        let allDown = RegionRouter.choose(
            location: Self.seattle, tenant: Self.euOnly, regions: Self.regions, healthy: ["us-east"], home: "us-east")
        #expect(allDown.region == "eu-west", "all allowed regions down: still never outside residency")
    }

    @Test func withoutCoordinatesTheContinentThenThisNodeDecide() {
        let onlyContinent = RegionRouter.Location(country: nil, continent: "EU")
        #expect(
            RegionRouter.choose(
                location: onlyContinent, tenant: Self.anywhere, regions: Self.regions, healthy: nil, home: "us-east")
                == .init(region: "eu-central", distanceKm: nil, reason: "continent"))
        #expect(
            RegionRouter.choose(
                location: nil, tenant: Self.anywhere, regions: Self.regions, healthy: nil, home: "us-east")
                == .init(region: "us-east", distanceKm: nil, reason: "unknown-address"))
        #expect(
            RegionRouter.choose(
                location: nil, tenant: Self.euOnly, regions: Self.regions, healthy: nil, home: "us-east"
            ).region
                == "eu-west", "unknown address on a node the tenant may not use: the allowed region nearest to it")
        var nowhere = Self.euOnly
        nowhere.residency = ["ap-south"]
        #expect(
            RegionRouter.choose(
                location: Self.seattle, tenant: nowhere, regions: Self.regions, healthy: nil, home: "us-east"
            ).reason
                == "no-allowed-region")
    }
}

@Suite("Region choice: country lists, regions marked down, redirect targets")
struct RegionRouterFallbackTests {
    @Test func aCountryListedByARegionDecidesWhenThereAreNoCoordinates() {
        var regions = RegionRouterTests.regions
        regions[1].countries = ["DE", "AT"]
        let german = RegionRouter.Location(country: "DE", continent: "EU")
        let decision = RegionRouter.choose(
            location: german, tenant: RegionRouterTests.anywhere, regions: regions, healthy: nil, home: "us-east")
        #expect(decision.region == "eu-central" && decision.reason == "country")
        let french = RegionRouter.Location(country: "FR", continent: "EU")
        let byContinent = RegionRouter.choose(
            location: french, tenant: RegionRouterTests.anywhere, regions: regions, healthy: nil, home: "us-east")
        #expect(byContinent.reason == "continent", "an unlisted country goes by continent")
        regions[1].down = true
        let listedButDown = RegionRouter.choose(
            location: german, tenant: RegionRouterTests.anywhere, regions: regions, healthy: nil, home: "us-east")
        #expect(listedButDown.region != "eu-central")
    }

    @Test func aRegionMarkedDownIsNotChosenWhileAnotherAllowedOneIsUp() {
        var regions = RegionRouterTests.regions
        regions[0].down = true  // eu-west
        let london = RegionRouter.Location(country: "GB", continent: "EU", latitude: 51.5, longitude: -0.1)
        let decision = RegionRouter.choose(
            location: london, tenant: RegionRouterTests.euOnly, regions: regions, healthy: nil, home: "us-east")
        #expect(decision.region == "eu-central")
        regions[1].down = true  // every allowed region down: still never outside the residency
        let stuck = RegionRouter.choose(
            location: london, tenant: RegionRouterTests.euOnly, regions: regions, healthy: nil, home: "us-east")
        #expect(stuck.region.hasPrefix("eu-"))
    }

    @Test func redirectTargetsKeepPathAndQueryAndFillInTheHost() {
        let plain = RegionConfig(name: "eu-west", lat: 0, lon: 0, publicURL: "https://eu-west.edge.test/")
        #expect(
            plain.redirectLocation(host: "api.acme.test", target: "/v1/a?x=1") == "https://eu-west.edge.test/v1/a?x=1")
        #expect(plain.healthURL == "https://eu-west.edge.test/healthz")
        let templated = RegionConfig(name: "eu-west", lat: 0, lon: 0, publicURL: "https://eu-west.{host}")
        #expect(
            templated.redirectLocation(host: "api.acme.test", target: "/v1/a") == "https://eu-west.api.acme.test/v1/a")
        #expect(templated.healthURL == nil, "a template has no one host to probe")
    }
}

@Suite("Region health from probes")
struct RegionHealthTests {
    @Test func twoFailuresMarkARegionDownAndOneSuccessBringsItBack() {
        var health = RegionHealth()
        let regions = RegionRouterTests.regions
        #expect(health.record(region: "eu-west", success: false) == nil, "one lost probe moves nothing")
        #expect(health.healthy(regions, home: "us-east").contains("eu-west"))
        #expect(health.record(region: "eu-west", success: false) == .wentDown("eu-west"))
        #expect(!health.healthy(regions, home: "us-east").contains("eu-west"))
        #expect(health.record(region: "eu-west", success: false) == nil, "already down")
        #expect(health.record(region: "eu-west", success: true) == .cameUp("eu-west"))
        #expect(health.healthy(regions, home: "us-east") == ["eu-west", "eu-central", "us-east"])
    }

    @Test func aFailureBetweenSuccessesDoesNotCountTowardsDown() {
        var health = RegionHealth()
        _ = health.record(region: "eu-west", success: false)
        _ = health.record(region: "eu-west", success: true)
        #expect(health.record(region: "eu-west", success: false) == nil)
        #expect(health.probedUp("eu-west"))
    }

    @Test func theHomeRegionIsUpByItsOwnAccountUnlessMarkedDown() {
        var health = RegionHealth()
        _ = health.record(region: "us-east", success: false)
        _ = health.record(region: "us-east", success: false)
        var regions = RegionRouterTests.regions
        #expect(health.healthy(regions, home: "us-east").contains("us-east"))
        regions[2].down = true
        #expect(!health.healthy(regions, home: "us-east").contains("us-east"))
        health.keep(only: ["eu-west"])
        #expect(health.probedUp("us-east"), "forgotten regions count as up")
    }
}
