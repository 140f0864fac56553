#!/usr/bin/env python3
"""Sends GETs to an edge node over a few keep-alive connections until COUNT are done or the node
is gone, for the node kill -9 check in cli-checks.sh. Prints "answered N, 5xx M, other K".
Usage: node-traffic.py HOST:PORT TENANT_HOST COUNT"""
import http.client, sys, threading

address, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
name, port = address.split(":")
lock = threading.Lock()
tally = {"answered": 0, "5xx": 0, "other": 0}

def worker(offset):
    connection = None
    for index in range(offset, count, 4):
        try:
            if connection is None:
                connection = http.client.HTTPConnection(name, int(port), timeout=5)
            connection.request("GET", f"/v1/items/{index % 50}", headers={"Host": host})
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return  # the node was killed
        with lock:
            tally["answered"] += 1
            if response.status >= 500:
                tally["5xx"] += 1
            elif response.status != 200:
                tally["other"] += 1

threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"answered {tally['answered']}, 5xx {tally['5xx']}, other {tally['other']}")
