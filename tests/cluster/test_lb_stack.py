"""The LB role on real components: HAProxy in front of two one-slot backend stacks (nginx +
llama-server + SmolLM2), each a sandbox with its own --root, all on loopback."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from appliance.perf.bench import run_once
from tests.cluster.conftest import BACKEND, Cluster, lb_answers
from tests.cluster.load import Load
from tests.conftest import SMOLLM, wizard

pytestmark = pytest.mark.stack
ENGINE = "llama-server.service"
NGINX = "nginx.service"


def _served(cluster: Cluster) -> dict[str, int]:
    return {b["address"]: b["served"] for b in cluster.status()["lb"]["backends"]}


def _wait_up(cluster: Cluster, n: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        lb = cluster.status().get("lb") or {}
        if sum(b["state"] == "up" for b in lb.get("backends", [])) >= n:
            return
        time.sleep(0.3)
    raise AssertionError(f"fewer than {n} backends up: {cluster.status().get('lb')}")


def test_key_at_the_lb_and_both_backends_serve(cluster: Cluster) -> None:
    _wait_up(cluster, 2)
    before = _served(cluster)
    with cluster.lb_client() as c:
        r = c.get("/v1/models")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"].startswith("Bearer")
        key = cluster.auth()["Authorization"]
        for bad in (key.swapcase(), key + "x", key.replace("Bearer", "bearer"), "Bearer nope"):
            assert c.get("/v1/models", headers={"Authorization": bad}).status_code == 401
        assert c.get("/health").status_code == 200  # open, like the backends' probe
        assert c.get("/v1/models", headers=cluster.auth()).json()["data"][0]["id"] == SMOLLM

        def one(i: int) -> int:
            return c.post("/v1/chat/completions", headers=cluster.auth(), json={
                "messages": [{"role": "user", "content": f"Say hello {i}."}],
                "max_tokens": 8}).status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(one, range(8))) == [200] * 8
    after = _served(cluster)
    assert all(after[a] > before.get(a, 0) for a in after), (before, after)


def test_stream_through_the_lb_arrives_incrementally(cluster: Cluster) -> None:
    with cluster.lb_client() as c:
        s = run_once(c, "/v1", SMOLLM, 64, headers=cluster.auth(), prompt="Count to fifty.")
    assert s.gen_tokens >= 32
    total = s.ttft_ms + sum(s.gaps_ms)
    # tokens arrive as they are made, not in one burst at the end
    assert sum(s.gaps_ms) > 0.4 * total, (s.ttft_ms, total)
    assert sum(g > 1.0 for g in s.gaps_ms) > len(s.gaps_ms) // 2


def test_six_streams_queue_at_the_lb_and_all_complete(cluster: Cluster) -> None:
    _wait_up(cluster, 2)
    queued: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            queued.append(int(cluster.status()["lb"]["queued"]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with cluster.lb_client() as c, ThreadPoolExecutor(6) as pool:
            samples = list(pool.map(lambda i: run_once(
                c, "/v1", SMOLLM, 96, headers=cluster.auth(), prompt=f"Story {i}, please."),
                range(6)))
    finally:
        stop.set()
        watcher.join()
    assert [s.gen_tokens for s in samples] == [96] * 6
    assert max(queued) >= 1, queued  # requests waited in HAProxy, not on the backends
    ttfts = sorted(s.ttft_ms for s in samples)
    assert ttfts[-1] > 3 * ttfts[0]  # the last ones waited for a free slot


def test_backend_restarted_while_loading_gets_nothing_until_ready(cluster: Cluster) -> None:
    _wait_up(cluster, 2)
    b2 = cluster.b2
    log = b2.root / "var/log/nginx/access.log"
    with Load(cluster.lb_client, cluster.auth(), streams=2) as load:
        time.sleep(2)
        p = wizard("--root", str(b2.root), "drain", "--timeout", "60", check=True)
        assert "stopped" in p.stdout
        (b2.root / "run/slm-appliance/draining").unlink()
        mark = log.stat().st_size if log.exists() else 0
        services = b2.services
        services.start(NGINX)  # nginx answers at once, /health is 503 while the model loads
        services.start(ENGINE)
        deadline = time.time() + 60
        with b2.client(timeout=2) as c:
            while time.time() < deadline and c.get("/health").status_code != 200:
                time.sleep(0.05)
        _wait_up(cluster, 2)
        deadline = time.time() + 90
        while not _chat_statuses(log, mark) and time.time() < deadline:
            time.sleep(0.5)  # until a request through the LB completed on b2 again
    assert load.outcomes and not load.failures, load.failures[:3]
    statuses = _chat_statuses(log, mark)
    assert statuses, "the restarted backend got traffic again once ready"
    # none reached it while it loaded: a request there then would have been answered 503
    assert set(statuses) == {"200"}, statuses


def _chat_statuses(log: Path, offset: int) -> list[str]:
    """HTTP status of each chat request nginx logged after ``offset`` (JSON usage lines)."""
    out = []
    with open(log, "rb") as f:
        f.seek(offset)
        for line in f.read().decode().splitlines():
            if "/v1/chat/completions" in line:
                out.append(str(json.loads(line)["status"]))
    return out


def test_drain_under_load(cluster: Cluster) -> None:
    _wait_up(cluster, 2)
    b1 = cluster.b1
    states: list[str] = []
    try:
        with Load(cluster.lb_client, cluster.auth(), streams=2, max_tokens=96) as load:
            time.sleep(2)
            result: dict[str, str] = {}

            def run_drain() -> None:
                result["out"] = wizard("--root", str(b1.root), "drain", "--timeout", "60",
                                       check=True).stdout

            t = threading.Thread(target=run_drain)
            t.start()
            while t.is_alive():
                for b in cluster.status()["lb"]["backends"]:
                    if b["address"].endswith(f":{b1.port_base + 443}"):
                        states.append(b["state"])
                time.sleep(0.2)
            t.join()
            served = _served(cluster)
            deadline = time.time() + 90
            while sum(_served(cluster).values()) <= sum(served.values()) and time.time() < deadline:
                time.sleep(0.5)  # until the other backend took a new request
            after = _served(cluster)
        assert load.outcomes and not load.failures, load.failures[:3]
        assert "draining" in states, states
        assert not b1.services.is_active(ENGINE) and not b1.services.is_active(NGINX)
        b1_addr = f"127.0.0.1:{b1.port_base + 443}"
        assert after[b1_addr] == served[b1_addr]  # nothing new went to the drained one
        assert sum(after.values()) > sum(served.values())  # the other kept serving
    finally:
        b1.apply(BACKEND)  # back in service whatever happened: later tests need both


def _story_lines(c: httpx.Client, cluster: Cluster, prompt: str, tokens: int) -> Iterator[str]:
    """The lines of a chat stream through the LB that runs ``tokens`` long (EOS ignored)."""
    with c.stream("POST", "/v1/chat/completions", headers=cluster.auth(), json={
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": tokens, "stream": True, "ignore_eos": True}) as r:
        yield from r.iter_lines()


def test_backend_killed_mid_stream(cluster: Cluster) -> None:
    _wait_up(cluster, 2)
    errors: list[str] = []
    started = threading.Event()

    def long_stream() -> None:
        with cluster.lb_client(timeout=30) as c:
            try:
                for _ in _story_lines(c, cluster, "Write a long story.", 2000):
                    started.set()
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)

    t = threading.Thread(target=long_stream)
    t.start()
    assert started.wait(30)
    busy = [b for b in cluster.status()["lb"]["backends"] if b["current"]]
    assert len(busy) == 1
    victim = next(b for b in cluster.backends if busy[0]["address"].endswith(
        f":{b.port_base + 443}"))
    for unit in (ENGINE, NGINX):  # the whole process group: nginx's workers too
        pid = victim.services.pid(unit)
        assert pid
        os.killpg(pid, signal.SIGKILL)
    t0 = time.time()
    t.join(timeout=30)
    assert not t.is_alive(), "the cut stream hangs"
    assert errors, "the cut stream must end in an error, not look complete"
    assert time.time() - t0 < 10
    with cluster.lb_client(timeout=30) as c:
        for i in range(4):
            r = c.post("/v1/chat/completions", headers=cluster.auth(), json={
                "messages": [{"role": "user", "content": f"Hi {i}"}], "max_tokens": 4})
            assert r.status_code == 200, r.text
    victim.apply(BACKEND)


def test_lb_config_change_reloads_without_cutting_a_stream(cluster: Cluster) -> None:
    _wait_up(cluster, 2)
    lb = cluster.lb
    master = lb.services.pid("haproxy.service")
    result: dict[str, object] = {}
    started = threading.Event()

    def stream() -> None:
        with cluster.lb_client() as c:
            try:
                for line in _story_lines(c, cluster, "Tell a long story.", 160):
                    started.set()
                    if line == "data: [DONE]":
                        result["done"] = True
            except httpx.HTTPError as exc:
                result["error"] = repr(exc)

    t = threading.Thread(target=stream)
    t.start()
    assert started.wait(60)
    p = lb.apply(lb_answers(cluster.backends, "").replace("leastconn", "roundrobin"))
    assert "haproxy-test" in p.stdout and "reload haproxy.service" in p.stdout, p.stdout
    assert "balance roundrobin" in (lb.root / "etc/haproxy/haproxy.cfg").read_text()
    t.join(timeout=120)
    assert result == {"done": True}  # the old worker finished the stream after the reload
    assert lb.services.pid("haproxy.service") == master  # reloaded, not restarted
    lb.apply(lb_answers(cluster.backends))


def test_lb_without_backends_yet_is_ready_and_says_503(cluster: Cluster) -> None:
    """OneFlow starts the backend role only once the LB reports READY: an LB whose discovery
    found nothing yet must come up (HAProxy serving, /health 503) and count as ready."""
    lb = cluster.lb
    try:
        p = lb.apply(lb_answers(None))  # onegate, and no OneGate here: no backend known
        assert "haproxy" in p.stdout
        p = wizard("--root", str(lb.root), "status", "--json")
        info = json.loads(p.stdout)
        assert p.returncode == 0 and info["ready"] is True and info["health"] == 503
        assert info["lb"]["backends"] == [] and info["role"] == "lb"
        with cluster.lb_client() as c:
            r = c.get("/v1/models", headers=cluster.auth())
            assert r.status_code == 503 and r.json()["error"]["type"] == "unavailable_error"
            assert c.get("/v1/models").status_code == 401
    finally:
        lb.apply(lb_answers(cluster.backends))
