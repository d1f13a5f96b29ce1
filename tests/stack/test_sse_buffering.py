"""nginx must stream by its own settings, not because the upstream sends X-Accel-Buffering: no.

llama-server sends that header and would hide a buffering nginx; LocalAI does not. Here a test
upstream without the header (tests/paced_upstream.py) paces six events 200 ms apart, behind our
rendered nginx config.
"""

from __future__ import annotations

import datetime as dt
import getpass
import itertools
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.apply.probes import served_fingerprint
from appliance.plan.render.nginx import NginxInputs, render_nginx_conf
from appliance.tls.selfsigned import fingerprint, make_selfsigned
from tests.paced_upstream import paced_upstream
from tests.ports import reserve, wait_for
from tests.unit.test_render import write_key_files

KEY = "k" * 40


def _nginx_conf(tmp_path: Path, base: int, engine: int) -> bytes:
    """Our rendered nginx.conf in ``tmp_path``, proxying to ``engine``; returns the cert PEM."""
    pair = make_selfsigned(["localhost", "127.0.0.1"], dt.datetime.now(dt.UTC))
    (tmp_path / "cert.pem").write_bytes(pair.cert_pem)
    (tmp_path / "key.pem").write_bytes(pair.key_pem)
    for d in ("logs", "temp", "webroot"):
        (tmp_path / d).mkdir()
    conf = render_nginx_conf(NginxInputs(
        https=f"127.0.0.1:{base + 443}", http=f"127.0.0.1:{base + 80}",
        engine=f"127.0.0.1:{engine}", readiness_path="/health",
        cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"),
        webroot=str(tmp_path / "webroot"), pid=str(tmp_path / "nginx.pid"),
        log_dir=str(tmp_path / "logs"), temp_dir=str(tmp_path / "temp"),
        user=getpass.getuser(), **write_key_files(tmp_path, KEY)))
    (tmp_path / "nginx.conf").write_text(conf)
    return pair.cert_pem


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, str]]:
    ports = reserve((80, 443))
    base = ports.base
    with paced_upstream(events=6, gap_s=0.2) as engine:
        cert_pem = _nginx_conf(tmp_path, base, engine)
        proc = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"),
                                 "-p", f"{tmp_path}/", "-g", "daemon off;"])
        try:
            wait_for(lambda: served_fingerprint("127.0.0.1", base + 443) == fingerprint(
                cert_pem), "nginx with the test certificate",
                alive=lambda: None if proc.poll() is None else f"exit {proc.returncode}")
            yield f"https://127.0.0.1:{base + 443}", str(tmp_path / "cert.pem")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
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
