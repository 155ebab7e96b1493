"""A loopback reverse proxy that adds a tenant key to every request, for the MCP conformance suite.

`/mcp` needs a tenant key (the gateway has no anonymous routes but probes), and the conformance
CLI's `server` command cannot send an Authorization header. So scripts/mcp-conformance.sh points
the suite at this proxy, which forwards every request to the gateway unchanged (method, path,
body, and every header including Host and Origin, so the DNS-rebinding checks see what the suite
sent) plus `Authorization: Bearer <key>`, and streams the answer back.

    python3 auth_proxy.py --upstream http://127.0.0.1:8080 --key sk-... --port-file FILE

Listens on a free loopback port and writes it to FILE once it accepts connections. Standard
library only; one thread per connection; HTTP/1.0 responses (the body ends when the connection
closes), which needs no re-framing of streamed (SSE) answers.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import sys
import urllib.parse

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
UPSTREAM_TIMEOUT_S = 60.0


def make_handler(upstream: urllib.parse.SplitResult, key: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            sys.stderr.write(f"auth_proxy: {self.command} {self.path} {format % args}\n")

        def forward(self) -> None:
            body = self.read_body()
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=UPSTREAM_TIMEOUT_S)
            try:
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "authorization":
                        connection.putheader(name, value)
                connection.putheader("Authorization", f"Bearer {key}")
                connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body)
                response = connection.getresponse()
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                while chunk := response.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError as error:
                self.send_error(502, f"upstream: {error}")
            finally:
                connection.close()

        def read_body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = forward

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the gateway's base URL, http://host:port")
    parser.add_argument("--key", required=True, help="the tenant key to send")
    parser.add_argument("--port-file", required=True, help="where to write the port once listening")
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(upstream, args.key))
    server.daemon_threads = True
    temporary = f"{args.port_file}.tmp"
    with open(temporary, "w") as out:
        out.write(str(server.server_address[1]))
    os.replace(temporary, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
