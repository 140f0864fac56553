internal import CMaxMindDB
import Foundation
import TenantEdgeCore

/// A MaxMind DB opened with mmap. `MMDB_s` lives at a stable allocated address (results point back
/// into it) and is closed and freed in `deinit`. Lookups are read-only and safe from any thread.
public final class GeoIPDatabase: @unchecked Sendable {  // libmaxminddb lookups on an open MMDB_s are thread-safe
    private let database: UnsafeMutablePointer<MMDB_s>
    /// The four lookup paths, made once: building C strings on every lookup cost a quarter of it.
    private let countryPath = LookupPath(["country", "iso_code"])
    private let continentPath = LookupPath(["continent", "code"])
    private let latitudePath = LookupPath(["location", "latitude"])
    private let longitudePath = LookupPath(["location", "longitude"])

    public init(path: String) throws(EdgeError) {
        // Assigned to `self` only once open succeeded: a throwing init with every property set would run deinit.
        let handle = UnsafeMutablePointer<MMDB_s>.allocate(capacity: 1)
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), handle)
        guard status == MMDB_SUCCESS else {
            handle.deallocate()
            throw EdgeError(
                .geoIPFailure, "cannot open GeoIP database '\(path)': \(String(cString: MMDB_strerror(status)))")
        }
        database = handle
    }

    deinit {
        MMDB_close(database)
        database.deallocate()
    }

    /// Looks up an IPv4 or IPv6 address in text form; nil when the address is not in the database.
    public func lookup(_ address: String) throws(EdgeError) -> RegionRouter.Location? {
        guard let parsed = IPAddress(address) else {
            throw EdgeError(.geoIPFailure, "'\(address)' is not an IP address")
        }
        return try lookup(parsed)
    }

    /// Looks up a parsed address through `MMDB_lookup_sockaddr` (no text on the way); IPv4 and
    /// IPv4-mapped addresses go to the database's IPv4 tree.
    public func lookup(_ address: IPAddress) throws(EdgeError) -> RegionRouter.Location? {
        var mmdbError: Int32 = 0
        var result: MMDB_lookup_result_s
        if address.isIPv4 {
            var socket = sockaddr_in()
            socket.sin_family = sa_family_t(AF_INET)
            socket.sin_addr.s_addr = UInt32(truncatingIfNeeded: address.low).bigEndian
            result = withUnsafePointer(to: &socket) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    MMDB_lookup_sockaddr(database, $0, &mmdbError)
                }
            }
        } else {
            var socket = sockaddr_in6()
            socket.sin6_family = sa_family_t(AF_INET6)
            var halves = (address.high.bigEndian, address.low.bigEndian)
            withUnsafeBytes(of: &halves) { source in
                withUnsafeMutableBytes(of: &socket.sin6_addr) { $0.copyMemory(from: source) }
            }
            result = withUnsafePointer(to: &socket) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    MMDB_lookup_sockaddr(database, $0, &mmdbError)
                }
            }
        }
        guard mmdbError == MMDB_SUCCESS else {
            throw EdgeError(.geoIPFailure, "GeoIP lookup failed: \(String(cString: MMDB_strerror(mmdbError)))")
        }
        guard result.found_entry else { return nil }
        return RegionRouter.Location(
            country: try string(&result.entry, countryPath),
            continent: try string(&result.entry, continentPath),
            latitude: try double(&result.entry, latitudePath),
            longitude: try double(&result.entry, longitudePath))
    }

    /// The value at `path`; nil when the record has none. A record whose data cannot be decoded
    /// (a broken database) throws, so the caller can count it and fall back.
    private func value(_ entry: inout MMDB_entry_s, _ path: LookupPath) throws(EdgeError) -> MMDB_entry_data_s? {
        var data = MMDB_entry_data_s()
        let status = MMDB_aget_value(&entry, &data, path.components)
        switch status {
        case MMDB_SUCCESS: return data.has_data ? data : nil
        // the record lacks it
        case MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR, MMDB_INVALID_LOOKUP_PATH_ERROR: return nil
        default: throw EdgeError(.geoIPFailure, "GeoIP record unreadable: \(String(cString: MMDB_strerror(status)))")
        }
    }

    private func string(_ entry: inout MMDB_entry_s, _ path: LookupPath) throws(EdgeError) -> String? {
        guard let data = try value(&entry, path), data.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING),
            let text = data.utf8_string
        else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: text, count: Int(data.data_size)), as: UTF8.self)
    }

    /// Coordinates are doubles in MaxMind's databases; a float is accepted, any other type is broken data.
    private func double(_ entry: inout MMDB_entry_s, _ path: LookupPath) throws(EdgeError) -> Double? {
        guard let data = try value(&entry, path) else { return nil }
        switch data.type {
        case UInt32(MMDB_DATA_TYPE_DOUBLE): return data.double_value
        case UInt32(MMDB_DATA_TYPE_FLOAT): return Double(data.float_value)
        default: throw EdgeError(.geoIPFailure, "GeoIP record unreadable: coordinates of an unexpected type")
        }
    }
}

/// A lookup path as `MMDB_aget_value` takes it: NUL-terminated C strings, then NULL. Owned here and
/// freed in `deinit`; libmaxminddb only reads it.
private final class LookupPath {
    let components: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private let count: Int

    init(_ names: [String]) {
        count = names.count
        components = .allocate(capacity: names.count + 1)
        for (index, name) in names.enumerated() { components[index] = UnsafePointer(strdup(name)) }
        components[names.count] = nil
    }

    deinit {
        for index in 0..<count { free(UnsafeMutableRawPointer(mutating: components[index])) }
        components.deallocate()
    }
}
