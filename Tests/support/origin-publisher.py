#!/usr/bin/env python3
"""Publishes purges to an origin as fast as it answers, for the kill -9 and disk-full checks in
cli-checks.sh. Each purge names a key of its own; every one the origin acknowledged (200 and its
seq) is appended to ACKS as "seq key" before the next is sent, so a kill at any moment leaves in
ACKS exactly what the origin promised. Other answers are counted by status in ACKS.refused.
Usage: origin-publisher.py URL CA TOKEN PREFIX COUNT ACKS"""
import http.client, json, ssl, sys

url, ca, token, prefix, count, acks = sys.argv[1:7]
host, port = url.removeprefix("https://").split(":")
context = ssl.create_default_context(cafile=ca)
refused = {}
connection = None
for index in range(int(count)):
    key = f"/{prefix}-{index}"
    try:
        if connection is None:
            connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
        connection.request("POST", "/v1/invalidations", body=json.dumps({"tenant": "acme", "keys": [key]}),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        break  # the origin is gone: what was acknowledged is in ACKS
    if response.status == 200:
        with open(acks, "a") as out:
            out.write(f"{json.loads(body)['seq']} {key}\n")
    else:
        refused[response.status] = refused.get(response.status, 0) + 1
with open(acks + ".refused", "a") as out:
    for status, times in sorted(refused.items()):
        out.write(f"{status} {times}\n")
