"""Python's http.server as a lenient legacy backend behind latch.

HTTP/1.1 with keep-alive, and handlers that never read a request body:
a body left unread is parsed as the next request on the connection. Every
request it parses is recorded; GET /__seen lists them (asked directly,
never through latch). Prints "listening <port>" when ready.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        if self.path == "/__seen":
            body = json.dumps(SEEN).encode()
        else:
            SEEN.append({"method": self.command, "path": self.path,
                         "user": self.headers.get("X-Latch-User", "")})
            body = json.dumps({"method": self.command, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_DELETE = do_OPTIONS = do_POST = do_PUT = answer

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
