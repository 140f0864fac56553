#!/usr/bin/env python3
"""Sample tenant upstream for the demo and the benchmarks: one port, two tenants told apart by Host.

GET /v1/items/<n>            JSON, Cache-Control: public, max-age=60, ETag, Surrogate-Key
GET /v1/blob/<n>?size=BYTES  BYTES of payload (default 1024), max-age=300
GET /v1/private              Cache-Control: private (never stored)
Any path answers 304 when If-None-Match matches its ETag.
"""
import hashlib
import http.server
import json
import socketserver
import sys
import time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        tenant = host.split(".")[1] if host.count(".") >= 2 else host
        path, _, query = self.path.partition("?")
        headers = {"Content-Type": "application/json"}
        if path.startswith("/v1/blob/"):
            size = 1024
            for part in query.split("&"):
                if part.startswith("size="):
                    size = int(part[5:])
            seed = f"{tenant}:{path}".encode()
            body = (hashlib.sha256(seed).hexdigest() * (size // 64 + 1))[:size].encode()
            headers["Cache-Control"] = "public, max-age=300"
            headers["Surrogate-Key"] = f"blobs {tenant}"
        elif path == "/v1/private":
            body = json.dumps({"tenant": tenant, "user": "private"}).encode()
            headers["Cache-Control"] = "private"
        else:
            body = json.dumps({"tenant": tenant, "path": self.path, "generated_at": time.time()}).encode()
            headers["Cache-Control"] = "public, max-age=60, stale-while-revalidate=30, stale-if-error=600"
            headers["Surrogate-Key"] = f"items {tenant}"
        etag = '"' + hashlib.sha256(f"{tenant}:{self.path}".encode()).hexdigest()[:16] + '"'
        headers["ETag"] = etag
        headers["X-Upstream-Tenant"] = tenant
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            for name in ("ETag", "Cache-Control"):
                self.send_header(name, headers[name])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    Server(("127.0.0.1", port), Handler).serve_forever()
