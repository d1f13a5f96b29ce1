"""The real stack: nginx (Debian) + llama-server (built from PyPI) + SmolLM2, on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.broken_model import broken_model
from tests.conftest import GEMMA, SMOLLM, Stack, tree_hashes, wizard

pytestmark = pytest.mark.stack
CHAT = {"messages": [{"role": "user", "content": "Count from one to twenty in words."}],
        "max_tokens": 48, "temperature": 0}


def test_models_needs_the_exact_key(stack: Stack) -> None:
    key = stack.key()
    with stack.client() as c:
        r = c.get("/v1/models")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["code"] == "invalid_api_key"
        for bad in (f"Bearer {key}x", f"Bearer {key.swapcase()}", f"Basic {key}",
                    "Bearer wrong", key):
            assert c.get("/v1/models", headers={"Authorization": bad}).status_code == 401, bad
        for good in (f"bearer {key}", f"BEARER  {key}"):  # RFC 7235: the scheme has no case
            assert c.get("/v1/models", headers={"Authorization": good}).status_code == 200
        r = c.get("/v1/models", headers=stack.auth())
        assert r.status_code == 200
        assert r.json()["data"][0]["id"] == SMOLLM


def test_other_routes_need_the_key_too(stack: Stack) -> None:
    with stack.client() as c:
        for path in ("/", "/metrics", "/props", "/slots", "/v1/chat/completions"):
            assert c.get(path).status_code == 401, path
        assert c.get("/props", headers=stack.auth()).status_code == 404
        assert c.get("/metrics", headers=stack.auth()).status_code == 200
        assert c.get("/health").status_code == 200  # the probe is open


def test_http_serves_acme_and_redirects_the_rest(stack: Stack) -> None:
    webroot = stack.root / "var/lib/slm-appliance/acme-webroot/.well-known/acme-challenge"
    (webroot / "tok123").write_text("tok123.thumb")
    http = f"http://127.0.0.1:{stack.port_base + 80}"
    try:
        r = httpx.get(f"{http}/.well-known/acme-challenge/tok123")
        assert (r.status_code, r.text) == (200, "tok123.thumb")
        r = httpx.get(f"{http}/v1/models")
        assert r.status_code == 301
        assert r.headers["location"].startswith("https://127.0.0.1:")
    finally:
        (webroot / "tok123").unlink()


def test_non_streaming_chat_returns_content(stack: Stack) -> None:
    with stack.client() as c:
        r = c.post("/v1/chat/completions", headers=stack.auth(), json=CHAT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"].strip()
    assert body["model"] == SMOLLM


def _stream_times(c: httpx.Client, url: str, headers: dict[str, str], body: dict) -> list[float]:
    start = time.perf_counter()
    times = []
    with c.stream("POST", url, headers=headers, json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                times.append(time.perf_counter() - start)
    return times


def test_streaming_arrives_token_by_token(stack: Stack) -> None:
    body = {**CHAT, "stream": True, "max_tokens": 64}
    with stack.client() as c:
        times = _stream_times(c, "/v1/chat/completions", stack.auth(), body)
    assert len(times) >= 20
    first, last = times[1], times[-1]  # times[0] is the role-only event
    # Measured: the first token leaves long before the stream ends (not held by nginx).
    assert first < last * 0.5, (first, last)


def test_readiness_probe_is_503_until_the_model_is_loaded(stack: Stack) -> None:
    seen: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def poll() -> None:
        with stack.client(timeout=2) as c:
            while not stop.is_set():
                try:
                    r = c.get("/health")
                    seen.append((time.perf_counter(), r.status_code, r.text))
                except httpx.HTTPError:
                    pass
                time.sleep(0.03)  # under the probe's rate limit (50/s per address)

    services = stack.services
    unit = stack.engine_unit()
    services.stop(unit)
    t = threading.Thread(target=poll)
    t.start()
    try:
        time.sleep(0.3)
        started = time.perf_counter()
        services.start(unit)
        deadline = time.time() + 60
        while not any(s == 200 for _, s, _ in seen) and time.time() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        t.join()
    down = [(s, txt) for ts, s, txt in seen if ts < started]
    assert down and all(s == 503 for s, _ in down)
    assert json.loads(down[0][1])["error"]["type"] == "unavailable_error"
    statuses = [s for _, s, _ in seen]
    assert statuses[-1] == 200 and 503 in statuses[: statuses.index(200)]
    with stack.client() as c:
        assert c.get("/health").headers.get("retry-after") is None


def test_retry_after_while_the_engine_is_down(stack: Stack) -> None:
    services = stack.services
    unit = stack.engine_unit()
    services.stop(unit)
    try:
        with stack.client() as c:
            r = c.get("/health")
            assert r.status_code == 503 and r.headers["retry-after"] == "5"
            r = c.post("/v1/chat/completions", headers=stack.auth(), json=CHAT)
            assert r.status_code == 503
            assert "starting or restarting" in r.json()["error"]["message"]
    finally:
        services.start(unit)
        assert wizard("--root", str(stack.root), "status", "--json").returncode in (0, 1)
        stack.baseline()


def test_same_answers_twice_change_and_restart_nothing(fresh: Stack) -> None:
    s = fresh
    before = tree_hashes(s.root)
    pids = (s.services.pid(s.engine_unit()), s.services.pid("nginx.service"))
    p = s.apply("version: 1\n")
    assert "nothing to change" in p.stdout
    assert tree_hashes(s.root) == before
    assert (s.services.pid(s.engine_unit()), s.services.pid("nginx.service")) == pids


def _children(pid: int) -> set[str]:
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def test_threads_change_switches_the_engine_and_reloads_nginx(fresh: Stack) -> None:
    s = fresh
    old = s.engine_unit()
    engine, nginx = s.services.pid(old), s.services.pid("nginx.service")
    assert nginx is not None
    p = s.apply("threads: 1\n")
    new = s.engine_unit()
    assert new != old and f"start {new}" in p.stdout and f"stop {old}" in p.stdout
    assert "reload nginx.service" in p.stdout
    assert s.services.pid(old) is None and s.services.pid(new) not in (None, engine)
    assert s.services.pid("nginx.service") == nginx
    unit = (s.root / f"etc/systemd/system/{new}").read_text()
    assert "--threads 1 " in unit
    status = json.loads(wizard("--root", str(s.root), "status", "--json", check=True).stdout)
    assert status["threads"] == 1 and status["ready"] is True
    assert status["services"] == {new: True, "nginx.service": True}


def test_config_failing_nginx_t_is_rolled_back(fresh: Stack) -> None:
    s = fresh
    before = tree_hashes(s.root)
    engine = s.services.pid(s.engine_unit())
    # A documentation address (TEST-NET-2) is valid syntax but not on this machine: nginx -t fails.
    p = s.apply(f"listen:\n  https: 198.51.100.7:{s.port_base + 443}\n", check=False)
    assert p.returncode == 1
    assert "nginx-test" in p.stderr and "previous configuration restored" in p.stderr
    assert tree_hashes(s.root) == before
    assert s.services.pid(s.engine_unit()) == engine
    with s.client() as c:
        assert c.get("/v1/models", headers=s.auth()).status_code == 200


def test_engine_that_cannot_load_is_rolled_back(fresh: Stack, tmp_path: Path) -> None:
    s = fresh
    with broken_model(s) as path:
        before = tree_hashes(s.root)
        p = s.apply(f"model:\n  path: {path}\n", check=False)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "llama-server" in p.stderr and "model loading error" in p.stderr
        assert "previous configuration restored" in p.stderr
        assert tree_hashes(s.root) == before
        with s.client() as c:
            r = c.get("/v1/models", headers=s.auth())
            assert r.json()["data"][0]["id"] == SMOLLM


KILLER = r"""
import os, signal, sys
from pathlib import Path
from appliance.answers.stored import site_defaults
from appliance.apply.runtime import make_context
from appliance.apply.run import apply_answers
from appliance.host.paths import Layout
from appliance.host.site import load_site
layout = Layout(Path(sys.argv[1]))
site = load_site(layout)
writes = []
def emit(e):
    if e.step == "write-file":
        writes.append(e.detail)
        if len(writes) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
answers = site_defaults(site).replace(threads=1, api_key="rotate")
apply_answers(answers, make_context(layout, site, emit))
"""


def test_apply_killed_between_writes_is_repaired_by_the_next(fresh: Stack) -> None:
    s = fresh
    before = tree_hashes(s.root)
    key = s.key()
    p = subprocess.run([sys.executable, "-c", KILLER, str(s.root)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == -9
    assert (s.root / "var/lib/slm-appliance/journal/journal.json").exists()
    assert tree_hashes(s.root) != before  # half-written: the key changed, nginx's map not yet
    p = s.apply("version: 1\n")
    assert "recover" in p.stdout
    assert not (s.root / "var/lib/slm-appliance/journal").exists()
    assert s.key() == key
    after = tree_hashes(s.root)
    assert after == before
    with s.client() as c:
        assert c.get("/v1/models", headers=s.auth()).status_code == 200


def test_switch_to_a_model_without_chat_template(fresh: Stack) -> None:
    s = fresh
    p = s.apply(f"model:\n  id: {GEMMA}\n  context_size: 2048\n")
    assert "no chat template" in p.stdout
    unit = (s.root / f"etc/systemd/system/{s.engine_unit()}").read_text()
    assert "--no-jinja --chat-template gemma" in unit
    with s.client() as c:
        r = c.get("/v1/models", headers=s.auth())
        assert r.json()["data"][0]["id"] == GEMMA
        r = c.post("/v1/completions", headers=s.auth(),
                   json={"prompt": "The capital of France is", "max_tokens": 8})
        assert r.status_code == 200 and r.json()["choices"][0]["text"]
        r = c.post("/v1/chat/completions", headers=s.auth(),
                   json={**CHAT, "max_tokens": 8})
        assert r.status_code == 200


def test_rotate_changes_the_key_once(fresh: Stack) -> None:
    s = fresh
    old = s.key()
    s.apply("api_key: rotate\n")
    new = s.key()
    assert new != old
    with s.client() as c:
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {old}"}).status_code == 401
        assert c.get("/v1/models", headers=s.auth()).status_code == 200
    p = s.apply("api_key: rotate\n")
    assert "nothing to change" in p.stdout and s.key() == new
    assert os.stat(s.root / "etc/slm-appliance/api_key").st_mode & 0o777 == 0o600
    assert new not in (s.root / "var/log/slm-appliance/apply.log").read_text()


def test_bench_json_on_the_real_stack(stack: Stack) -> None:
    p = wizard("--root", str(stack.root), "bench", "--json", "--tokens", "32",
               "--repetitions", "2", check=True)
    out = json.loads(p.stdout)
    assert out["model"] == SMOLLM and out["timing_source"] == "engine"
    assert out["generation_tokens_per_s"] > 0 and out["prompt_tokens_per_s"] > 0  # speed: bench/
    runs = [(r["generated_tokens"], r["prompt_tokens"] > 0) for r in out["runs"]]
    assert runs == [(32, True)] * 2 and out["ttft_ms"] > 0 and out["threads"] >= 1


def test_tune_measures_candidates_and_restores(fresh: Stack) -> None:
    s = fresh
    # Each candidate switches engine instances: which one serves at the end (its unit file,
    # nginx's upstream port, the state) may differ; what it runs may not.
    moving = ("var/lib/slm-appliance/state.json", "etc/systemd/system/llama-server",
              "etc/nginx/nginx.conf")
    before = tree_hashes(s.root, ignore=moving)

    def serving() -> str:
        unit = (s.root / f"etc/systemd/system/{s.engine_unit()}").read_text()
        return re.sub(r"--port \d+ ", "", unit.split("ExecStart=")[1].splitlines()[0])

    command = serving()
    p = wizard("--root", str(s.root), "tune", "--json", check=True)
    out = json.loads(p.stdout)
    logical = os.cpu_count() or 1
    assert 1 <= out["best_threads"] <= logical and out["measured"]
    assert all(v > 0 for v in out["measured"].values())
    assert tree_hashes(s.root, ignore=moving) == before  # without --apply: threads restored
    assert serving() == command
