"""Proxy overhead: streaming through nginx + TLS + API key vs straight to the engine.

Pairs are interleaved (direct, proxied, direct, ...) and measured on the client, since the
engine's own timings cannot see the proxy. A short prompt keeps prefill noise out of TTFT.
"""

from __future__ import annotations

import httpx

from appliance.perf.bench import Sample, run_once
from bench.common import Section, Stack, fmt, median, pct, standalone

PAIRS, TOKENS = 25, 64
PROMPT = "Tell me about rivers."


def run(stack: Stack) -> Section:
    model = str(stack.state()["model_id"])
    direct: list[Sample] = []
    proxied: list[Sample] = []
    with httpx.Client(timeout=300) as d, stack.proxy_client() as p:
        for client, url in ((d, stack.engine_url), (p, stack.proxy_url)):
            run_once(client, url, model, 8, prompt=PROMPT)  # warm connections and caches
        for _ in range(PAIRS):
            direct.append(run_once(d, stack.engine_url, model, TOKENS, prompt=PROMPT))
            proxied.append(run_once(p, stack.proxy_url, model, TOKENS, prompt=PROMPT))
    ttft_diff = median([b.ttft_ms - a.ttft_ms for a, b in zip(direct, proxied, strict=True)])
    tps_d = median([s.client_gen_tps or 0 for s in direct])
    tps_p = median([s.client_gen_tps or 0 for s in proxied])
    # The engine's own timings cannot see the proxy: if they drop too when proxied, the cost
    # is CPU taken from the engine (nginx + TLS share its cores), not delay or batching.
    eng_d = median([s.gen_tps for s in direct])
    eng_p = median([s.gen_tps for s in proxied])
    gaps_d = [g for s in direct for g in s.gaps_ms]
    gaps_p = [g for s in proxied for g in s.gaps_ms]
    burst_d = sum(g < 0.5 for g in gaps_d) / max(1, len(gaps_d))
    burst_p = sum(g < 0.5 for g in gaps_p) / max(1, len(gaps_p))
    rows = [["path", "TTFT median ms", "tok/s (client)", "tok/s (engine)", "gap median ms",
             "gap p95 ms", "gap max ms", "gaps < 0.5 ms"],
            ["direct to engine", fmt(median([s.ttft_ms for s in direct])), fmt(tps_d), fmt(eng_d),
             fmt(median(gaps_d), 2), fmt(pct(gaps_d, 95), 2), fmt(max(gaps_d), 2),
             f"{burst_d:.1%}"],
            ["nginx + TLS + key", fmt(median([s.ttft_ms for s in proxied])), fmt(tps_p),
             fmt(eng_p),
             fmt(median(gaps_p), 2), fmt(pct(gaps_p, 95), 2), fmt(max(gaps_p), 2),
             f"{burst_p:.1%}"]]
    section = Section("Proxy overhead: nginx + TLS + API key vs direct", rows)
    section.ratios.append(("TTFT difference, median of pairs (ms)", ttft_diff, "<= 5 ms",
                           ttft_diff <= 5))
    section.ratios.append(("tok/s proxied / direct", tps_p / tps_d, ">= 0.97",
                           tps_p / tps_d >= 0.97))
    section.ratios.append(("share of gaps < 0.5 ms, proxied minus direct (batching)",
                           burst_p - burst_d, "~0", abs(burst_p - burst_d) < 0.05))
    section.ratios.append(("engine's own tok/s, proxied run / direct run", eng_p / eng_d,
                           "explains the row above", None))
    if tps_p / tps_d < 0.97:
        section.notes.append(
            f"the client-side ratio misses 0.97 and the engine's own timings drop by "
            f"{1 - eng_p / eng_d:.1%} in the proxied runs too: on this 2-core machine the "
            "engine's 2 threads, nginx's TLS work and the benchmark client share the same "
            "cores, so the proxy costs CPU the compute-bound engine needed; the stream itself "
            "is neither delayed (TTFT) nor batched (gaps). A VM with a core to spare, or "
            "threads = cores - 1, removes this.")
    section.notes.append(f"{PAIRS} interleaved pairs of {TOKENS}-token streams, keep-alive "
                         "connections on both paths; an event batched by the proxy would show "
                         "as near-zero gaps after a long one.")
    return section


if __name__ == "__main__":
    standalone(run)
