"""A real webhook receiver for tests: http.server on a free loopback port, in a thread.

It records every request (headers and body) and answers what `answer` returns for it,
500 for its first `fail_first` requests by default; a receiver dedupes by webhook-id, as
Standard Webhooks asks, so `processed` holds each id once, in the order first accepted.
"""

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    fail_first: int = 0
    # (request number from 0, path) -> (status, extra headers, body); None: the default.
    answer: Callable[[int, str], tuple[int, dict, bytes] | None] | None = None
    requests: list[Request] = field(default_factory=list)  # as answered
    arrivals: int = 0
    processed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # HTTPS with this certificate and key (tests.httpsserver.certificates_make), else HTTP.
    tls: dict[str, Path] | None = None

    def __enter__(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    number = receiver.arrivals
                    receiver.arrivals += 1
                status, headers, reply = receiver._answer(number, self.path)  # may hold this request
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                with receiver.lock:
                    receiver.requests.append(request)
                    if 200 <= status < 300 and request.webhook_id not in receiver.processed:
                        receiver.processed.append(request.webhook_id)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                try:
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls["cert"], self.tls["key"])
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, number: int, path: str) -> tuple[int, dict, bytes]:
        chosen = self.answer(number, path) if self.answer else None
        if chosen is not None:
            return chosen
        if number < self.fail_first:
            return 500, {}, b"down for maintenance"
        return 204, {}, b""

    @property
    def url(self) -> str:
        if self.tls:
            return f"https://localhost:{self.server.server_address[1]}/hooks/digest"
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/digest"

    def ids(self, *, status_ok: bool = True) -> list[str]:
        """Every webhook-id received with a 2xx answer (or with any answer), in arrival order, repeats kept."""
        return [r.webhook_id for r in self.requests if not status_ok or 200 <= r.status < 300]
