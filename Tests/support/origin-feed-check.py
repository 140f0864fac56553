#!/usr/bin/env python3
"""Reads an origin's whole invalidation feed as a node does and checks it against ACKS (from
origin-publisher.py): every acknowledged purge is there under the seq it was given, once, and the
seqs run 1, 2, 3 … without a gap or a repeat. Prints one line; exit 1 on a problem.
Usage: origin-feed-check.py URL CA NODE_TOKEN ACKS"""
import http.client, json, ssl, sys

url, ca, token, acks = sys.argv[1:5]
host, port = url.removeprefix("https://").split(":")
context = ssl.create_default_context(cafile=ca)
events, after = [], 0
while True:
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    connection.request("GET", f"/v1/invalidations?after={after}&wait=1", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"feed answered {response.status} after {after}: {body[:200]!r}")
    page = json.loads(body).get("events", [])
    if not page:
        break
    events += page
    after = page[-1]["seq"]
seqs = [event["seq"] for event in events]
if seqs != list(range(1, len(seqs) + 1)):
    sys.exit(f"the feed's seqs are not 1..{len(seqs)} in order: {seqs[:20]}…")
by_seq = {event["seq"]: event for event in events}
acknowledged = [line.split() for line in open(acks) if line.strip()]
missing = [(seq, key) for seq, key in acknowledged if key not in (by_seq.get(int(seq), {}).get("keys") or [])]
if missing:
    sys.exit(f"{len(missing)} acknowledged purges missing from the feed, first {missing[:3]}")
keys = [key for event in events for key in event.get("keys") or []]
if len(keys) != len(set(keys)):
    sys.exit("a purge is in the feed twice")
print(f"feed has {len(events)} events; all {len(acknowledged)} acknowledged purges there, once, in order")
