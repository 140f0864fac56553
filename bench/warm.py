#!/usr/bin/env python3
"""Warms a cache: GETs every benchmark key once (twice for Varnish/nginx to be sure) over keep-alive,
then checks that a sample of keys is served as a hit. Usage: warm.py PORT KEYS SIZE HOST HIT_HEADER HIT_VALUE"""
import http.client
import sys

port, keys, size, host, header, hit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for round_ in range(2):
    for n in range(keys):
        conn.request("GET", f"/v1/blob/{n}?size={size}", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"warm: port {port} key {n}: status {response.status}")
hits = 0
for n in range(0, keys, max(1, keys // 50)):
    conn.request("GET", f"/v1/blob/{n}?size={size}", headers={"Host": host})
    response = conn.getresponse()
    response.read()
    if hit in (response.getheader(header) or ""):
        hits += 1
sample = len(range(0, keys, max(1, keys // 50)))
if hits != sample:
    sys.exit(f"warm: port {port}: only {hits}/{sample} sampled keys were hits")
