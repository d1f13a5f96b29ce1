"""Cost of the request guard: the same nginx with and without it, side by side, one engine.

The stack's own nginx.conf is copied with the njs guard replaced by a plain hand-over to the
same proxying location (``try_files`` to the named location), on other ports, so the only
difference is the guard (njs reads the body, parses it once, checks the fields). Pairs of
64-token streams alternate between the two; a short non-streamed request measures the added
latency per request where the engine answers fast.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import time

import httpx

from appliance.host.sandbox import free_port_base
from appliance.perf.bench import Sample, run_once
from bench.common import Section, Stack, fmt, median
from bench.proxy import PROMPT, TOKENS

PAIRS = 20
SHORT = 30


def _unguarded(stack: Stack, base: int) -> tuple[str, str, int]:
    """(config path, prefix, https port) of an nginx twin without the guard."""
    conf = stack.layout.map(stack.layout.nginx_conf).read_text()
    https = stack.port_base + 443
    conf = re.sub(r"js_content slm_gate\.check;", r"try_files /.slm-nothing $slm_engine_location;",
                  conf)
    conf = conf.replace(f":{https} ssl", f":{base + 443} ssl")
    conf = conf.replace(f":{stack.port_base + 80};", f":{base + 80};")
    conf = re.sub(r"^pid .*;$", f"pid {stack.root.parent}/unguarded.pid;", conf, flags=re.M)
    path = stack.root.parent / "nginx-unguarded.conf"
    path.write_text(conf)
    return str(path), str(stack.layout.map(stack.layout.nginx_prefix)) + "/", base + 443


def _short(c: httpx.Client, url: str, model: str) -> float:
    t0 = time.perf_counter()
    r = c.post(f"{url}/chat/completions", json={
        "model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]})
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def run(stack: Stack) -> Section:
    model = str(stack.state()["model_id"])
    conf, prefix, port = _unguarded(stack, free_port_base())
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", prefix, "-g", "daemon off;"])
    try:
        time.sleep(0.5)
        off_url = f"https://127.0.0.1:{port}/v1"
        on: list[Sample] = []
        off: list[Sample] = []
        short_on: list[float] = []
        short_off: list[float] = []
        verify = ssl.create_default_context(cafile=str(stack.layout.map(
            stack.layout.selfsigned_cert)))
        verify.check_hostname = False
        auth = {"Authorization": f"Bearer {stack.key}"}
        with httpx.Client(verify=verify, timeout=300, headers=auth) as g, \
                httpx.Client(verify=verify, timeout=300, headers=auth) as u:
            for client, url in ((g, stack.proxy_url), (u, off_url)):
                run_once(client, url, model, 8, prompt=PROMPT)  # warm connections and caches
            for _ in range(PAIRS):
                off.append(run_once(u, off_url, model, TOKENS, prompt=PROMPT))
                on.append(run_once(g, stack.proxy_url, model, TOKENS, prompt=PROMPT))
            for _ in range(SHORT):
                short_off.append(_short(u, off_url, model))
                short_on.append(_short(g, stack.proxy_url, model))
    finally:
        nginx.terminate()
        nginx.wait(timeout=15)
    ttft = median([b.ttft_ms - a.ttft_ms for a, b in zip(off, on, strict=True)])
    tps_on = median([s.client_gen_tps or 0 for s in on])
    tps_off = median([s.client_gen_tps or 0 for s in off])
    cost = median([b - a for a, b in zip(short_off, short_on, strict=True)])
    rows = [["nginx", "TTFT median ms", "tok/s (client)", "1-token request median ms"],
            ["without the guard", fmt(median([s.ttft_ms for s in off])), fmt(tps_off),
             fmt(median(short_off))],
            ["with the guard (njs)", fmt(median([s.ttft_ms for s in on])), fmt(tps_on),
             fmt(median(short_on))]]
    section = Section("Request guard: nginx with vs without it", rows)
    section.ratios.append(("TTFT difference, median of pairs (ms)", ttft, "<= 5 ms", ttft <= 5))
    section.ratios.append(("tok/s with / without the guard", tps_on / tps_off, ">= 0.97",
                           tps_on / tps_off >= 0.97))
    section.ratios.append(("added latency per request, median of pairs (ms)", cost,
                           "report", None))
    section.notes.append(f"{PAIRS} interleaved pairs of {TOKENS}-token streams and {SHORT} pairs "
                         "of 1-token requests; the twin nginx is the stack's own config with "
                         "`js_content` replaced by a hand-over to the same proxying location.")
    return section


if __name__ == "__main__":
    from bench.common import standalone

    standalone(run)
