"""Scale-out: two one-thread backends behind the HAProxy LB vs one one-thread backend direct.

Side by side in one run, on three sandbox stacks on loopback:
* aggregate generation tok/s of 2 concurrent streams through the LB (two backends, one slot
  and one thread each) vs the same 2 streams straight to one backend (its one slot serialises
  them): the scale-out ratio (target >= 1.7x on 2 cores);
* TTFT through the LB vs straight to the same kind of backend, interleaved pairs, keep-alive
  on both paths: what the extra hop adds (target <= 3 ms median). Each request's own prefill
  time (the engine's ``timings``) is taken out of its TTFT before the pair is compared, so the
  hop is measured, not which of the two backends the LB picked or how busy its core was.
"""

from __future__ import annotations

import ssl
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from appliance.perf.bench import Sample, run_once
from bench.common import Section, fmt, median
from tests.cluster.conftest import KEY, running_cluster
from tests.conftest import SMOLLM, Stack

ROUNDS, TOKENS, PAIRS = 4, 96, 30
AUTH = {"Authorization": f"Bearer {KEY}"}


def _client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.https, timeout=300, headers=AUTH,
                        verify=ssl.create_default_context(cafile=stack.ca))


def _aggregate(client: httpx.Client, streams: int) -> tuple[float, list[Sample]]:
    """ROUNDS rounds of ``streams`` concurrent streams: completion tokens / wall time."""
    samples: list[Sample] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        for r in range(ROUNDS):
            samples += pool.map(lambda i, r=r: run_once(
                client, "/v1", SMOLLM, TOKENS, prompt=f"Round {r} stream {i}: rivers."),
                range(streams))
    return sum(s.gen_tokens for s in samples) / (time.perf_counter() - start), samples


def outside_prefill(s: Sample) -> float:
    """The part of a TTFT (ms) not spent in the engine's prefill: network, TLS, proxies, queue.

    Prefill time depends on which backend answered and what else ran on its core; the hop the
    LB adds does not, so pairs are compared on this remainder."""
    if not s.prompt_tps or s.source != "engine":
        raise ValueError("the engine reported no prompt timings; cannot isolate the hop")
    return s.ttft_ms - s.prompt_tokens / s.prompt_tps * 1000


def compare(b1: Stack, lb: Stack) -> Section:
    with _client(b1) as direct, _client(lb) as via_lb:
        for c in (direct, via_lb):
            run_once(c, "/v1", SMOLLM, 8)  # warm connections and caches
        one_tps, _ = _aggregate(direct, 2)
        two_tps, _ = _aggregate(via_lb, 2)
        direct_s, lb_s = [], []
        for i in range(PAIRS):
            prompt = f"Pair {i}: one word."
            direct_s.append(run_once(direct, "/v1", SMOLLM, 2, prompt=prompt))
            lb_s.append(run_once(via_lb, "/v1", SMOLLM, 2, prompt=prompt))
    ratio = two_tps / one_tps
    d_ttft, l_ttft = [s.ttft_ms for s in direct_s], [s.ttft_ms for s in lb_s]
    added = median([outside_prefill(b) - outside_prefill(a)
                    for a, b in zip(direct_s, lb_s, strict=True)])
    rows = [["path", "aggregate tok/s (2 streams)", "TTFT median ms (1 stream)"],
            ["one backend, direct (1 thread, 1 slot)", fmt(one_tps), fmt(median(d_ttft), 2)],
            ["LB + two backends (1 thread, 1 slot each)", fmt(two_tps), fmt(median(l_ttft), 2)]]
    s = Section("Scale-out: HAProxy LB in front of two backends", rows)
    s.ratios.append(("aggregate tok/s, two behind the LB / one direct", ratio, ">= 1.7",
                     ratio >= 1.7))
    s.ratios.append(("TTFT added by the LB, median of pairs (ms)", added, "<= 3 ms",
                     added <= 3))
    s.notes.append(f"{ROUNDS} rounds of 2 concurrent {TOKENS}-token streams per path; "
                   f"{PAIRS} interleaved 2-token pairs for TTFT (the first token's time; the "
                   "second makes the engine report its timings), prompts differ per pair and "
                   "`cache_prompt` is off, so no prompt cache helps either side; keep-alive "
                   "connections on both paths.")
    s.notes.append("TTFT added by the LB = median over pairs of (TTFT - the engine's own "
                   "prefill time) through the LB minus the same direct: the raw TTFT medians "
                   "above also differ by which backend the LB picked and its core's load.")
    s.notes.append("Both backends and the LB share this machine's cores with the client: on "
                   "2 cores the two one-thread engines take both, so HAProxy's and the "
                   "client's work is what keeps the ratio under 2.")
    return s


def run(_stack: object = None) -> Section:
    """Its own three stacks (two one-thread backends, an LB); ``bench.run_all`` passes its
    shared stack, which this comparison does not use."""
    with tempfile.TemporaryDirectory(prefix="slm-bench-lb-") as tmp, \
            running_cluster(Path(tmp)) as cluster:
        time.sleep(3)  # both backends pass their first checks (rise 2)
        return compare(cluster.b1, cluster.lb)


if __name__ == "__main__":
    run().print()
