#!/usr/bin/env python3
"""Writes the small GeoIP2-City-shaped database the tests use when ../shared/geoip is absent.

Networks (documentation and test ranges only):
  81.2.69.0/24     GB, EU, 51.5142 / -0.0931   (the same network MaxMind's own test DB has)
  216.160.83.0/24  US, NA, 47.6034 / -122.3414
  2001:db8:1::/48  DE, EU, 50.1109 / 8.6821
"""
import sys
from mmdb_writer import MMDBWriter, MmdbF64
from netaddr import IPSet

def city(country, continent, lat, lon):
    return {
        "country": {"iso_code": country},
        "continent": {"code": continent},
        "location": {"latitude": MmdbF64(lat), "longitude": MmdbF64(lon)},
    }

writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True, description="TenantEdge test DB")
writer.insert_network(IPSet(["81.2.69.0/24"]), city("GB", "EU", 51.5142, -0.0931))
writer.insert_network(IPSet(["216.160.83.0/24"]), city("US", "NA", 47.6034, -122.3414))
writer.insert_network(IPSet(["2001:db8:1::/48"]), city("DE", "EU", 50.1109, 8.6821))
writer.to_db_file(sys.argv[1])
