#!/usr/bin/env python3
"""Writes the small GeoIP2-City-shaped databases the tests use when ../shared/geoip is absent.

make_test_mmdb.py OUT            the test database:
  81.2.69.0/24     GB, EU, 51.5142 / -0.0931   (the same network MaxMind's own test DB has)
  216.160.83.0/24  US, NA, 47.6034 / -122.3414
  2001:db8:1::/48  DE, EU, 50.1109 / 8.6821
  198.51.100.0/24  a broken record: its latitude is a string (lookups must fail cleanly)
make_test_mmdb.py OUT --swapped  the database a test swaps in on disk: 81.2.69.0/24 is in the US.
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

swapped = "--swapped" in sys.argv[2:]
writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True, description="TenantEdge test DB")
if swapped:
    writer.insert_network(IPSet(["81.2.69.0/24"]), city("US", "NA", 40.7128, -74.006))
else:
    writer.insert_network(IPSet(["81.2.69.0/24"]), city("GB", "EU", 51.5142, -0.0931))
    writer.insert_network(IPSet(["198.51.100.0/24"]), {
        "country": {"iso_code": "ZZ"}, "continent": {"code": "EU"}, "location": {"latitude": "north", "longitude": MmdbF64(0.0)}})
writer.insert_network(IPSet(["216.160.83.0/24"]), city("US", "NA", 47.6034, -122.3414))
writer.insert_network(IPSet(["2001:db8:1::/48"]), city("DE", "EU", 50.1109, 8.6821))
writer.to_db_file(sys.argv[1])
