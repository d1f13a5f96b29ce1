"""A loopback HTTP mirror of the build's pinned inputs, with byte ranges so `curl -C -` resumes
as it does against a real server (Python's http.server ignores Range). Counts the requests
and the bytes sent so the test can see a resume fetch only the missing part."""

from __future__ import annotations

import http.server
import os
import re
import threading
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    sent: dict[str, int]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if not path.is_file() or not m:
            return super().send_head()
        size = path.stat().st_size
        start = int(m.group(1))
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return f

    def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
        start = source.tell()
        super().copyfile(source, outputfile)
        self.sent[self.path] = self.sent.get(self.path, 0) + source.tell() - start


class Mirror:
    def __init__(self, folder: Path) -> None:
        self.sent: dict[str, int] = {}
        handler = type("Handler", (_Handler,), {"sent": self.sent})
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a: handler(*a, directory=os.fspath(folder)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
