"""nginx must stream by its own settings, not because the upstream sends X-Accel-Buffering: no.

llama-server sends that header and would hide a buffering nginx; LocalAI does not. Here a test
upstream without the header paces six events 200 ms apart, behind our rendered nginx config.
"""

from __future__ import annotations

import datetime as dt
import getpass
import http.server
import itertools
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.apply.probes import served_fingerprint
from appliance.plan.render.nginx import NginxInputs, render_key_map, render_nginx_conf
from appliance.tls.selfsigned import fingerprint, make_selfsigned
from tests.ports import reserve, wait_for

KEY = "k" * 40


class SlowSSE(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for n in range(6):
            self._chunk(f'data: {{"n": {n}}}\n\n'.encode())
            time.sleep(0.2)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, str]]:
    ports = reserve((80, 443))
    base = ports.base
    upstream = Server(("127.0.0.1", 0), SlowSSE)  # binds and holds its own port
    engine = upstream.server_address[1]
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    pair = make_selfsigned(["localhost", "127.0.0.1"], dt.datetime.now(dt.UTC))
    (tmp_path / "cert.pem").write_bytes(pair.cert_pem)
    (tmp_path / "key.pem").write_bytes(pair.key_pem)
    (tmp_path / "keys.conf").write_text(render_key_map(KEY))
    for d in ("logs", "temp", "webroot"):
        (tmp_path / d).mkdir()
    conf = render_nginx_conf(NginxInputs(
        https=f"127.0.0.1:{base + 443}", http=f"127.0.0.1:{base + 80}",
        engine=f"127.0.0.1:{engine}", readiness_path="/health",
        cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"),
        key_map=str(tmp_path / "keys.conf"), webroot=str(tmp_path / "webroot"),
        pid=str(tmp_path / "nginx.pid"), log_dir=str(tmp_path / "logs"),
        temp_dir=str(tmp_path / "temp"), user=getpass.getuser()))
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", f"{tmp_path}/",
                             "-g", "daemon off;"])
    try:
        wait_for(lambda: served_fingerprint("127.0.0.1", base + 443) == fingerprint(
            pair.cert_pem), "nginx with the test certificate",
            alive=lambda: None if proc.poll() is None else f"exit {proc.returncode}")
        yield f"https://127.0.0.1:{base + 443}", str(tmp_path / "cert.pem")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()
        ports.release()


def _arrivals(url: str, ca: str) -> list[float]:
    times = []
    with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=10) as c:
        start = time.perf_counter()
        with c.stream("POST", url, headers={"Authorization": f"Bearer {KEY}"},
                      json={"stream": True}) as r:
            assert r.status_code == 200
            assert "x-accel-buffering" not in r.headers
            for line in r.iter_lines():
                if line.startswith("data: "):
                    times.append(time.perf_counter() - start)
    return times


def test_stream_routes_are_unbuffered_without_upstream_help(proxied: tuple[str, str]) -> None:
    base, ca = proxied
    times = _arrivals(f"{base}/v1/chat/completions", ca)
    assert len(times) == 7
    assert times[0] < 0.15, times  # the first event is not held back
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]
    assert all(0.1 < g < 0.35 for g in gaps), gaps  # each event leaves as the upstream sends it


def test_other_routes_stay_buffered(proxied: tuple[str, str]) -> None:
    # Contrast: /v1/embeddings keeps nginx's buffering, so the same stream arrives in one burst.
    base, ca = proxied
    times = _arrivals(f"{base}/v1/embeddings", ca)
    assert len(times) == 7
    assert times[0] > 1.0 and times[-1] - times[0] < 0.1, times
