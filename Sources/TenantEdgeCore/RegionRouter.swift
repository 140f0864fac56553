import Foundation

/// Where a client should be served: the nearest region, by great-circle
/// distance to the GeoIP location, among the healthy regions the tenant's residency allows. Pure
/// logic: the location comes from the GeoIP adapter, health from the bundle and the node's probes.
public enum RegionRouter {
    /// What the GeoIP database said about an address (every field may be missing).
    public struct Location: Sendable, Equatable {
        public var country: String?
        public var continent: String?
        public var latitude: Double?
        public var longitude: Double?
        public init(country: String? = nil, continent: String? = nil, latitude: Double? = nil, longitude: Double? = nil)
        {
            self.country = country
            self.continent = continent
            self.latitude = latitude
            self.longitude = longitude
        }
    }

    public struct Decision: Sendable, Equatable {
        public var region: String
        public var distanceKm: Double?
        /// `nearest`, `country` (no coordinates: a region that lists the country), `continent` (no
        /// coordinates: nearest to the continent's centre), `unknown-address` (this node's region,
        /// or the allowed region nearest to it) or `no-allowed-region`.
        public var reason: String
    }

    /// Rough centres of the continents (GeoIP2 continent codes), for addresses without coordinates.
    static let continentCentres: [String: (lat: Double, lon: Double)] = [
        "EU": (50.0, 10.0), "NA": (40.0, -100.0), "SA": (-15.0, -60.0), "AS": (30.0, 100.0),
        "AF": (5.0, 20.0), "OC": (-25.0, 135.0), "AN": (-80.0, 0.0),
    ]

    /// Great-circle distance in km (haversine, mean Earth radius).
    public static func distanceKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
        let radians = Double.pi / 180
        let dLat = (lat2 - lat1) * radians
        let dLon = (lon2 - lon1) * radians
        let a =
            sin(dLat / 2) * sin(dLat / 2) + cos(lat1 * radians) * cos(lat2 * radians) * sin(dLon / 2) * sin(dLon / 2)
        return 2 * 6371.0088 * asin(min(1, sqrt(a)))
    }

    /// - Parameters:
    ///   - healthy: regions known healthy; nil when nothing is known (all count as healthy).
    ///   - home: this node's region, the answer when nothing better is known and it is allowed.
    public static func choose(
        location: Location?, tenant: TenantConfig, regions: [RegionConfig], healthy: Set<String>?,
        home: String
    ) -> Decision {
        choose(location: location, residency: tenant.residency, regions: regions, healthy: healthy, home: home)
    }

    /// `choose` for a residency profile: all of a tenant that the decision depends on.
    public static func choose(
        location: Location?, residency: [String], regions: [RegionConfig], healthy: Set<String>?,
        home: String
    ) -> Decision {
        let permitted = regions.filter { residency.isEmpty || residency.contains($0.name) }
        let candidates = permitted.filter { !$0.down && (healthy?.contains($0.name) ?? true) }
        let pool = candidates.isEmpty ? permitted : candidates  // all unhealthy: still never outside residency
        guard !pool.isEmpty else { return Decision(region: home, distanceKm: nil, reason: "no-allowed-region") }
        func nearest(_ lat: Double, _ lon: Double) -> (RegionConfig, Double) {
            pool.map { ($0, distanceKm(lat, lon, $0.lat, $0.lon)) }.min { $0.1 < $1.1 }!
        }
        if let latitude = location?.latitude, let longitude = location?.longitude,
            (-90...90).contains(latitude), (-180...180).contains(longitude)
        {  // NaN or out of range: as if none
            let (region, distance) = nearest(latitude, longitude)
            return Decision(region: region.name, distanceKm: distance, reason: "nearest")
        }
        if let country = location?.country, let listed = pool.first(where: { $0.countries.contains(country) }) {
            return Decision(region: listed.name, distanceKm: nil, reason: "country")
        }
        if let continent = location?.continent, let centre = continentCentres[continent] {
            return Decision(region: nearest(centre.lat, centre.lon).0.name, distanceKm: nil, reason: "continent")
        }
        if pool.contains(where: { $0.name == home }) {
            return Decision(region: home, distanceKm: nil, reason: "unknown-address")
        }
        let homeRegion = regions.first { $0.name == home }
        let fallback = homeRegion.map { nearest($0.lat, $0.lon).0 } ?? pool[0]
        return Decision(region: fallback.name, distanceKm: nil, reason: "unknown-address")
    }
}
