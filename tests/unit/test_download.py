"""Downloads against a real HTTP server on loopback that honours Range and can cut off."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.errors import DownloadError
from appliance.host.download import Progress, download

DATA = bytes(range(256)) * 4096 * 3  # 3 MiB
SHA = hashlib.sha256(DATA).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    cut_after: int | None = None  # bytes sent before dropping the connection, once
    ranges: list[str] = []  # noqa: RUF012 (test state)

    def do_GET(self) -> None:
        start = 0
        rng = self.headers.get("Range")
        Handler.ranges.append(rng or "")
        if rng:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        else:
            self.send_response(200)
        body = DATA[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.cut_after is not None:
            self.wfile.write(body[: Handler.cut_after])
            Handler.cut_after = None
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.ranges = []
    Handler.cut_after = None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/model.gguf"
    srv.shutdown()
    srv.server_close()


def test_download_verifies_and_reports_progress(server: str, tmp_path: Path) -> None:
    seen: list[Progress] = []
    with httpx.Client() as c:
        dest = download(c, server, tmp_path / "m.gguf", SHA, len(DATA), seen.append)
    assert dest.read_bytes() == DATA and dest.stat().st_mode & 0o777 == 0o644
    assert seen[-1].done == len(DATA) and seen[-1].total == len(DATA)
    assert seen[-1].fraction == 1.0 and seen[0].speed > 0
    assert not (tmp_path / "m.gguf.part").exists()


def test_interrupted_download_resumes_with_range(server: str, tmp_path: Path) -> None:
    Handler.cut_after = 1_000_000
    with httpx.Client() as c:
        with pytest.raises(DownloadError, match="run it again to resume"):
            download(c, server, tmp_path / "m.gguf", SHA, len(DATA))
        assert not (tmp_path / "m.gguf").exists()  # never a partial file under the real name
        assert (tmp_path / "m.gguf.part").stat().st_size == 1_000_000
        download(c, server, tmp_path / "m.gguf", SHA, len(DATA))
    assert (tmp_path / "m.gguf").read_bytes() == DATA
    assert Handler.ranges == ["", "bytes=1000000-"]


def test_wrong_sha256_keeps_nothing(server: str, tmp_path: Path) -> None:
    with httpx.Client() as c, pytest.raises(DownloadError, match="sha256 mismatch"):
        download(c, server, tmp_path / "m.gguf", "0" * 64, len(DATA))
    assert list(tmp_path.iterdir()) == []


def test_free_disk_is_checked_first(server: str, tmp_path: Path) -> None:
    with httpx.Client() as c, pytest.raises(DownloadError, match="not enough disk space"):
        download(c, server, tmp_path / "m.gguf", SHA, 1 << 60)
    assert Handler.ranges == []  # nothing was requested


def test_existing_model_is_never_overwritten(server: str, tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"running model")
    with httpx.Client() as c, pytest.raises(DownloadError, match="already exists"):
        download(c, server, tmp_path / "m.gguf", SHA, len(DATA))
    assert (tmp_path / "m.gguf").read_bytes() == b"running model"
