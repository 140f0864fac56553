#!/usr/bin/env python3
"""Mock of the node admin and origin dashboard endpoints, for working on the two dashboard pages.

Standard library only. Serves
  GET  /_edge/dashboard            Sources/TenantEdgeNode/Admin/Dashboard/node-dashboard.html
  GET  /_edge/dashboard/data       growing fake counters: acme, globex, a hostile tenant id, nulls
  POST /_edge/purge                {"purged": N, "id": "TENANT:FENCE"}
  GET  /_edge/purges/TENANT:FENCE  node-a acknowledges at once, node-b after ~1 s
  GET  /v1/dashboard               Sources/TenantEdgeOrigin/API/fleet-dashboard.html
  GET  /v1/dashboard/data          fake fleet state
  GET  /_mock/fail/on | off        (no token) make the two data endpoints answer 500, or stop
The HTML files are re-read on every request, with a strict CSP made of their script/style hashes
(what the daemons should send too). Every /_edge and /v1 call but the pages needs
`Authorization: Bearer TOKEN`, else 401 {"error":"unauthorized","detail":...}.

  python3 Tests/browser/mock_server.py --port 8099 --token dev-token [--fail-data] [--cert C --key K]
      [--scopes read,purge] [--token-tenants acme,globex]
With --port 0 a free port is chosen; the first line printed is "listening on URL".
"""
import argparse
import base64
import hashlib
import json
import math
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "/_edge/dashboard": ROOT / "Sources/TenantEdgeNode/Admin/Dashboard/node-dashboard.html",
    "/v1/dashboard": ROOT / "Sources/TenantEdgeOrigin/API/fleet-dashboard.html",
}
HOSTILE = "<img src=x onerror=alert(1)>"
BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
STARTED = time.time()


def csp_for(html: str) -> str:
    """script-src / style-src: the sha256 of each inline element (tag at a line start), nothing else."""
    def hashes(tag):
        return " ".join(
            "'sha256-%s'" % base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            for body in re.findall(r"^<%s>(.*?)</%s>" % (tag, tag), html, re.S | re.M))
    return ("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'" % (hashes("script"), hashes("style")))


def latency(total, center):
    """Cumulative buckets of `total` requests spread around bucket index `center` (each bucket's
    count is a floor of total x a fixed share, so every counter only grows)."""
    weights = [math.exp(-((i - center) ** 2) / 2.0) for i in range(len(BOUNDS) + 1)]
    s, running, cumulative = sum(weights), 0.0, []
    for w in weights[:-1]:
        running += w / s
        cumulative.append(min(total, int(total * running)))
    return {"bounds_s": BOUNDS, "cumulative": cumulative + [total]}


def tenant(t, rate, l2_share, center, memory, redis=True):
    # Counters must only grow (the page takes a decrease for a restart): floors of a growing value.
    grown = rate * t + 3 * math.sin(t / 7.0) + 3
    hit, miss, bypass, stale = (int(grown * share) for share in (0.7, 0.2, 0.05, 0.05))
    total = hit + miss + bypass + stale
    out = {
        "requests": {"hit": hit, "l2_hit": int(hit * l2_share), "stale": stale, "miss": miss,
                     "revalidated": 0, "bypass": bypass, "error": 0},
        "bytes": {"memory": memory + int(t * 300) % 4096, "memory_quota": 1 << 20},
        "entries": 5 + int(t) % 7, "evictions": int(t // 30),
        "latency": latency(total, center),
        "key_version": 2, "entries_by_key_version": {"1": 3, "2": 2},
    }
    if redis:
        out["bytes"]["redis"] = 2048 + int(t * 10)
    return out


def node_data(token_scopes=("read", "purge"), token_tenants=("*",)):
    now = time.time()
    t = now - STARTED
    return {
        "time": now,
        "node": {"id": "node-a", "region": "eu-west", "uptime_s": int(t) + 12, "config_version": 3},
        "token": {"scopes": list(token_scopes), "tenants": list(token_tenants)},
        "tenants": {
            "acme": tenant(t, 40.0, 0.3, 4, 900_000),
            "globex": tenant(t, 6.0, 0.0, 6, 10_000, redis=False),
            HOSTILE: {"requests": {"hit": None, "miss": int(t)}, "bytes": {"memory": None, "memory_quota": 0,
                      "redis": 1e30}, "entries": None, "evictions": 2 ** 70, "latency": {"bounds_s": [1]},
                      "key_version": None, "entries_by_key_version": None},
        },
        "nodes": [
            {"id": "node-a", "self": True, "region": "eu-west", "seen_s_ago": 0, "cursor": 42 + int(t), "lag_s": 0.4,
             "config_version": 3, "tiers": {"redis": "up", "origin_feed": "up", "geoip": "loaded"},
             "key_versions": {"acme": [1, 2], "globex": [2]}},
            {"id": "node-b", "self": False, "region": "eu-west", "seen_s_ago": round(t % 15, 1), "cursor": 40 + int(t),
             "lag_s": None, "config_version": 2, "tiers": {"redis": "down", "origin_feed": "standalone", "geoip": None},
             "key_versions": None},
        ],
        "events": [
            {"kind": "auth_failed", "tenant": "-", "source": "127.0.0.1", "first": now - 60, "last": now - 5,
             "count": 12 + int(t)},
            {"kind": "<script>alert(2)</script>", "tenant": HOSTILE, "source": "\"><svg onload=alert(3)>",
             "first": None, "last": now - 90, "count": None},
            {"kind": "decrypt_failed", "tenant": "acme", "source": "10.0.0.7", "first": now - 4000, "last": now - 3600,
             "count": 1},
        ],
    }


def origin_data():
    now = time.time()
    t = now - STARTED
    head = 120 + int(t)
    return {
        "time": now,
        "origin": {"head_seq": head, "config_version": 7, "store": "sqlite"},
        "regions": [
            {"name": "eu-west", "nodes": [
                {"id": "node-a", "last_poll_s_ago": 0.8, "cursor": head - 2, "lag_events": 2, "bundle_version": 7,
                 "push": "ok"},
                {"id": "node-b", "last_poll_s_ago": round(t % 20, 1), "cursor": head - 9, "lag_events": None,
                 "bundle_version": 6, "push": "failed"},
            ]},
            {"name": HOSTILE, "nodes": [
                {"id": "\"><svg onload=alert(4)>", "last_poll_s_ago": None, "cursor": None, "lag_events": 2 ** 64,
                 "bundle_version": None, "push": None},
            ]},
        ],
        "publishes": [
            {"version": 7, "at": now - 30, "nodes": {"node-a": "applied", "node-b": "pending"}},
            {"version": 6, "at": now - 7200, "nodes": {"node-a": "applied", "node-b": "failed"}},
        ],
        "erasures": [
            {"tenant": "old", "seq": 99, "at": now - 50, "nodes": {"node-a": now - 49, "node-b": None}},
            {"tenant": HOSTILE, "seq": None, "at": None, "nodes": None},
        ],
    }


class State:
    lock = threading.Lock()
    fail = False
    purges = {}  # id -> (created, tenant, purged)
    counter = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mock: " + (fmt % args) + "\n")

    def send(self, status, body, content_type="application/json", extra=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if self.headers.get("Authorization", "") == "Bearer " + self.server.token:
            return True
        self.send(401, {"error": "unauthorized", "detail": "a valid bearer token is required"},
                  extra={"WWW-Authenticate": "Bearer"})
        return False

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in PAGES:
            html = PAGES[path].read_bytes().decode("utf-8")
            self.send(200, html.encode(), "text/html; charset=utf-8",
                      {"Content-Security-Policy": csp_for(html), "Referrer-Policy": "no-referrer"})
            return
        if path in ("/_mock/fail/on", "/_mock/fail/off"):
            State.fail = path.endswith("/on")
            self.send(200, {"fail": State.fail})
            return
        if not (path.startswith("/_edge/") or path.startswith("/v1/")):
            self.send(404, {"error": "not_found", "detail": "no such path"})
            return
        if not self.authorized():
            return
        if path in ("/_edge/dashboard/data", "/v1/dashboard/data"):
            if State.fail or self.server.fail_data:
                self.send(500, {"error": "internal", "detail": "mock failure"})
            else:
                self.send(200, node_data(self.server.scopes, self.server.tenants) if path.startswith("/_edge")
                          else origin_data())
            return
        if path.startswith("/_edge/purges/"):
            pid = path[len("/_edge/purges/"):]  # not percent-decoded, like the node's router
            with State.lock:
                found = State.purges.get(pid)
            if not found:
                self.send(404, {"error": "not_found", "detail": "no purge '%s'" % pid})
                return
            created, tenant_id, purged = found
            nodes = {"node-a": {"applied_at": created + 0.012, "purged": purged}}
            if time.time() - created >= 1.0:
                nodes["node-b"] = {"applied_at": created + 1.0, "purged": 0}
            self.send(200, {"id": pid, "tenant": tenant_id, "nodes": nodes})
            return
        self.send(404, {"error": "not_found", "detail": "no such path"})

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path != "/_edge/purge":
            self.send(404, {"error": "not_found", "detail": "no such path"})
            return
        if not self.authorized():
            return
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except Exception:
            self.send(400, {"error": "bad_request", "detail": "body is not valid JSON"})
            return
        tenant_id = body.get("tenant")
        lists = [k for k in ("keys", "tags", "prefixes") if body.get(k)]
        if tenant_id not in node_data()["tenants"]:
            self.send(404, {"error": "unknown_tenant", "detail": "no tenant '%s' on this node" % tenant_id})
            return
        if len(lists) != 1 or not all(isinstance(v, str) for v in body[lists[0]]):
            self.send(400, {"error": "bad_request", "detail": "give one of keys, tags, prefixes"})
            return
        with State.lock:
            State.counter += 1
            pid = "%s:%d" % (tenant_id, 1000 + State.counter)  # the node's "<tenant>:<fence>"
            State.purges[pid] = (time.time(), tenant_id, 3)
        self.send(200, {"purged": 3, "id": pid})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--token", default="dev-token")
    ap.add_argument("--fail-data", action="store_true", help="the data endpoints always answer 500")
    ap.add_argument("--scopes", default="read,purge", help="token.scopes the node data reports")
    ap.add_argument("--token-tenants", default="*", help="token.tenants the node data reports")
    ap.add_argument("--cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--key", help="and this key (PEM)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.token, server.fail_data, server.verbose = args.token, args.fail_data, args.verbose
    server.scopes, server.tenants = args.scopes.split(","), args.token_tenants.split(",")
    scheme = "http"
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print("listening on %s://%s:%d" % (scheme, args.host, server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
