#!/usr/bin/env python3
"""A small real HTTPS server for the libcurl tests: serves DIR over TLS with the given cert and key."""
import functools
import http.server
import socket
import ssl
import sys

port, cert, key, directory = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True

server = Server(("127.0.0.1", port), functools.partial(Handler, directory=directory))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
