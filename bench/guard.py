"""Cost of the request guard: the stack's nginx with and without it, side by side.

Two copies of the stack's own nginx.conf run on other ports: one as rendered (njs reads the
body, parses it once, checks the fields), one with ``js_content`` replaced by a plain hand-over
to the same proxying location (``try_files`` to the named location). Both proxy to a paced
upstream in this process (an SSE stream of 64 events 5 ms apart, or a small JSON), so engine
noise on a shared machine cannot hide or fake a difference: what differs is the guard alone.
Interleaved pairs: a 64-event stream (TTFT, events per second) and a short JSON request with a
typical 2 KB chat body (the added latency per request).
"""

from __future__ import annotations

import re
import ssl
import subprocess
import time
from pathlib import Path

import httpx

from appliance.host.sandbox import free_port_base
from bench.common import Section, Stack, fmt, median
from tests.paced_upstream import paced_upstream

PAIRS, EVENTS, GAP_S = 30, 64, 0.005
BODY = {"model": "", "max_tokens": 64, "temperature": 0.2,
        "messages": [{"role": "system", "content": "You are a helpful assistant. " * 20},
                     {"role": "user", "content": "Tell me about rivers and lakes. " * 30}]}


def _twin(stack: Stack, name: str, base: int, upstream: int, guard: bool) -> tuple[Path, int]:
    conf = stack.layout.map(stack.layout.nginx_conf).read_text()
    if not guard:
        conf = conf.replace("js_content slm_gate.check;",
                            "try_files /.slm-nothing $slm_engine_location;")
    conf = re.sub(r"(upstream slm_engine \{\s*server )[^;]+;", rf"\g<1>127.0.0.1:{upstream};",
                  conf)
    conf = conf.replace(f":{stack.port_base + 443} ssl", f":{base + 443} ssl")
    conf = conf.replace(f":{stack.port_base + 80};", f":{base + 80};")
    conf = re.sub(r"^pid .*;$", f"pid {stack.root.parent}/{name}.pid;", conf, flags=re.M)
    path = stack.root.parent / f"nginx-{name}.conf"
    path.write_text(conf)
    return path, base + 443


def _stream(c: httpx.Client, url: str) -> tuple[float, float]:
    """(TTFT ms, events per second after the first)."""
    t0 = time.perf_counter()
    times = []
    with c.stream("POST", url, json={**BODY, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                times.append(time.perf_counter() - t0)
    return times[0] * 1000, (len(times) - 1) / (times[-1] - times[0])


def _short(c: httpx.Client, url: str) -> float:
    t0 = time.perf_counter()
    c.post(url, json=BODY).raise_for_status()
    return (time.perf_counter() - t0) * 1000


def _pairs(stack: Stack, upstream: int) -> dict[str, list[tuple[float, float, float]]]:
    """Both nginx twins in front of ``upstream``: (TTFT, events/s, short ms) per pair."""
    prefix = str(stack.layout.map(stack.layout.nginx_prefix)) + "/"
    ports, procs = {}, []
    try:
        for name, guard in (("guarded", True), ("unguarded", False)):
            conf, ports[name] = _twin(stack, name, free_port_base(), upstream, guard)
            procs.append(subprocess.Popen(["nginx", "-c", str(conf), "-p", prefix,
                                           "-g", "daemon off;"]))
        time.sleep(0.5)
        verify = ssl.create_default_context(cafile=str(stack.layout.map(
            stack.layout.selfsigned_cert)))
        verify.check_hostname = False
        auth = {"Authorization": f"Bearer {stack.key}"}
        url = {n: f"https://127.0.0.1:{p}/v1/chat/completions" for n, p in ports.items()}
        res: dict[str, list[tuple[float, float, float]]] = {n: [] for n in ports}
        with httpx.Client(verify=verify, timeout=60, headers=auth) as c:
            for n in ports:
                _stream(c, url[n])  # warm connections
            for _ in range(PAIRS):
                for n in ("unguarded", "guarded"):
                    ttft, eps = _stream(c, url[n])
                    res[n].append((ttft, eps, _short(c, url[n])))
        return res
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=15)


def run(stack: Stack) -> Section:
    BODY["model"] = str(stack.state()["model_id"])
    with paced_upstream(EVENTS, GAP_S) as upstream:
        res = _pairs(stack, upstream)
    on, off = res["guarded"], res["unguarded"]
    ttft = median([a[0] - b[0] for a, b in zip(on, off, strict=True)])
    eps = median([a[1] for a in on]) / median([b[1] for b in off])
    cost = median([a[2] - b[2] for a, b in zip(on, off, strict=True)])
    rows = [["nginx", "TTFT median ms", "events/s median", "2 KB request median ms"]]
    for label, r in (("without the guard", off), ("with the guard (njs)", on)):
        rows.append([label, fmt(median([x[0] for x in r]), 2), fmt(median([x[1] for x in r])),
                     fmt(median([x[2] for x in r]), 2)])
    section = Section("Request guard: the same nginx with vs without it", rows)
    section.ratios.append(("TTFT difference, median of pairs (ms)", ttft, "<= 5 ms", ttft <= 5))
    section.ratios.append(("stream rate with / without the guard", eps, ">= 0.97", eps >= 0.97))
    section.ratios.append(("added latency per request, median of pairs (ms)", cost, "report",
                           None))
    section.notes.append(f"{PAIRS} interleaved pairs; a paced upstream ({EVENTS} SSE events "
                         f"{GAP_S * 1000:.0f} ms apart) stands in for the engine so only nginx "
                         "differs; the guarded copy is the stack's own nginx.conf.")
    return section


if __name__ == "__main__":
    from bench.common import standalone

    standalone(run)
