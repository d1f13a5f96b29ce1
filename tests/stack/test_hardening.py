"""Issue 14's attacks against the real stack (nginx + njs + llama-server on loopback), short.

The long slow-body run is ``python -m bench.attack``; here the same clients run for seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import time

import httpx
import pytest

from bench.attack import slow_bodies
from tests.conftest import Stack

pytestmark = pytest.mark.stack
ENGINE = "llama-server.service"


def _engine_unit(stack: Stack) -> str:
    """The engine unit serving now (blue-green may have switched to the second slot)."""
    services = stack.services
    for unit in (ENGINE, "llama-server-b.service"):
        if services.is_active(unit):
            return unit
    raise AssertionError("no engine is running")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) << 10  # type: ignore[union-attr]


def _memory_max(stack: Stack, unit: str) -> int:
    text = (stack.root / "etc/systemd/system" / unit).read_text()
    return int(re.search(r"^MemoryMax=(\d+)M$", text, re.M).group(1)) << 20  # type: ignore[union-attr]


def _refused(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, object] = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    return error


def test_guard_refuses_what_crashes_or_bloats_the_engine(stack: Stack) -> None:
    unit = _engine_unit(stack)
    pid = stack.services.pid(unit)
    assert pid is not None
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    deep = ('{"messages":[{"role":"user","content":"hi"}],"x":'
            + "[" * 200_000 + "]" * 200_000 + "}")
    with stack.client() as c:
        r = c.post("/v1/chat/completions", headers=stack.auth(), content=deep)
        assert "deeper than 32 levels" in str(_refused(r)["message"])
        for field, value in (("n_probs", 100000), ("top_logprobs", 21), ("max_tokens", -1),
                             ("max_tokens", 2049), ("max_completion_tokens", 10**9),
                             ("n_predict", -2), ("n", 50)):
            r = c.post("/v1/chat/completions", headers=stack.auth(), json={**chat, field: value})
            assert _refused(r)["param"] == field, (field, value)
        r = c.post("/v1/completions", headers=stack.auth(), json={"prompt": "x", "logprobs": 99})
        assert _refused(r)["param"] == "logprobs"
        for body in ("[1, 2]", "{bad", '"text"'):
            assert _refused(c.post("/v1/completions", headers=stack.auth(), content=body))
        ok = c.post("/v1/chat/completions", headers=stack.auth(),
                    json={**chat, "max_tokens": 4, "logprobs": True, "top_logprobs": 20})
        assert ok.status_code == 200, ok.text
    assert stack.services.pid(unit) == pid  # the engine never saw the bad ones
    assert _rss(pid) < _memory_max(stack, unit)


def test_frozen_engine_makes_health_503_within_3_s(stack: Stack) -> None:
    pid = stack.services.pid(_engine_unit(stack))
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        with stack.client(timeout=10) as c:
            t0 = time.monotonic()
            r = c.get("/health")
            took = time.monotonic() - t0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.status_code == 503 and took < 3, (r.status_code, took)
    assert r.headers["retry-after"] == "5" and r.json()["error"]["type"] == "unavailable_error"


def test_killed_engine_is_restarted_without_an_apply(stack: Stack) -> None:
    unit = _engine_unit(stack)
    services = stack.services
    pid = services.pid(unit)
    assert pid is not None
    state = (stack.root / "var/lib/slm-appliance/state.json").read_bytes()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 90
    status = 0
    with stack.client(timeout=5) as c:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                status = c.get("/health").status_code
            if status == 200 and services.pid(unit) not in (None, pid):
                break
            time.sleep(0.3)
    assert status == 200 and services.pid(unit) not in (None, pid)
    assert "killed by signal 9: restarting" in services.log_tail(unit, 200)
    assert (stack.root / "var/lib/slm-appliance/state.json").read_bytes() == state


def test_slow_bodies_do_not_starve_keyed_clients(stack: Stack) -> None:
    res = asyncio.run(slow_bodies(stack.port_base + 443, stack.port_base + 80, stack.ca,
                                  stack.key(), per_target=2000, duration_s=10, drip_s=2))
    assert res.connections >= 4000
    assert res.all_ok, res.probes
    assert res.worst_s < 1.0, sorted(t for _, t in res.probes)


def test_nginx_errors_are_json_and_health_takes_no_body(stack: Stack) -> None:
    with stack.client() as c:
        for method in ("POST", "PUT", "DELETE"):
            r = c.request(method, "/health")
            assert r.status_code == 405 and r.json()["error"]["code"] == 405
        r = c.request("GET", "/health", content=b"x" * 10)
        assert r.status_code == 400 and "no request body" in r.json()["error"]["message"]
        r = c.get("/v1/" + "a" * 20000, headers=stack.auth())
        assert r.status_code == 414 and r.json()["error"]["code"] == 414
        r = c.get("/nowhere", headers=stack.auth())
        assert r.status_code == 404 and "/v1/" in r.json()["error"]["message"]
    tls = ssl.create_default_context(cafile=stack.ca)
    with socket.create_connection(("127.0.0.1", stack.port_base + 443)) as raw, \
            tls.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        reply = s.recv(4096).decode()
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") and json.loads(body)["error"]["code"] == 400


def test_access_log_never_holds_a_query_string(stack: Stack) -> None:
    secret = "sk-not-a-header-" + "q" * 20
    with stack.client() as c:
        c.get(f"/v1/models?api_key={secret}", headers=stack.auth())
        c.get(f"/v1/models?key={secret}")
    time.sleep(0.2)
    assert secret not in (stack.root / "var/log/nginx/access.log").read_text()
