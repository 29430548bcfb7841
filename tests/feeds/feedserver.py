"""A feed host for tests: a threaded HTTP server on a free loopback port serving the samples, and bad answers."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"
_CHUNK = b"<item><title>padding</title><description>" + b"x" * 65_000 + b"</description></item>\n"


class FeedServer:
    """Serve `routes` (path → (status, content type, bytes)) at http://127.0.0.1:port, plus fixed bad paths.

    /huge.xml streams 20 MB with no Content-Length; /huge-declared.xml declares it;
    /stall.xml sends its headers and then nothing until the server stops; /away.xml redirects
    to another host (localhost instead of 127.0.0.1); /moved.xml redirects within this host.
    """

    def __init__(self):
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.answer(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, path: str, sample: str | bytes, *, status: int = 200, content_type: str = "application/rss+xml"):
        """Answer `path` with a sample file's bytes (or the bytes given)."""
        body = sample if isinstance(sample, bytes) else (SAMPLES / sample).read_bytes()
        self.routes[path] = (status, content_type, body)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        if path in ("/huge.xml", "/huge-declared.xml"):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/rss+xml")
            if path == "/huge-declared.xml":
                handler.send_header("Content-Length", str(20 * 1024 * 1024))
            handler.end_headers()
            try:
                handler.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>\n')
                for _ in range(20 * 1024 * 1024 // len(_CHUNK)):
                    handler.wfile.write(_CHUNK)
            except OSError:  # the client stopped reading, as it should
                pass
        elif path == "/stall.xml":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/rss+xml")
            handler.end_headers()
            handler.wfile.flush()
            self.released.wait()
        elif path in ("/away.xml", "/moved.xml"):
            handler.send_response(302)
            target = self.url("/blog.xml", host="localhost") if path == "/away.xml" else "/blog.xml"
            handler.send_header("Location", target)
            handler.end_headers()
        elif path in self.routes:
            status, content_type, body = self.routes[path]
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        else:
            handler.send_error(404, "Not Found")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
