"""A paced SSE upstream on loopback, standing in for the engine where only what sits in front
of it (nginx) is under test: its timing is fixed, so engine noise cannot hide or fake a
difference, and it sends no ``X-Accel-Buffering`` header (LocalAI does not either), so nginx
must stream by its own settings.

A POST whose JSON body asks for ``"stream": true`` gets ``events`` SSE events ``gap_s`` apart,
then ``[DONE]``; any other POST gets a small JSON answer at once.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class PacedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers + body wait on delayed ACKs (40 ms)
    events = 6
    gap_s = 0.2

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if b'"stream": true' not in body and b'"stream":true' not in body:
            data = b'{"choices":[{"message":{"content":"ok"}}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for n in range(self.events):
            self._chunk(f'data: {{"n": {n}}}\n\n'.encode())
            time.sleep(self.gap_s)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def paced_upstream(events: int, gap_s: float) -> Iterator[int]:
    """Serve on a free loopback port (bound before it is yielded, so no race) until the
    block ends; yields the port."""
    handler = type("Paced", (PacedHandler,), {"events": events, "gap_s": gap_s})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
