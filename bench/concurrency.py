"""Concurrency: aggregate and per-stream tokens/s at 1, 2 and 4 streams through nginx."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from appliance.perf.bench import Sample, run_once
from bench.common import Section, Stack, fmt, median, standalone

TOKENS, ROUNDS = 128, 3
PROMPT = "Tell me a long story about a river."


def run(stack: Stack) -> Section:
    model = str(stack.state()["model_id"])
    parallel = stack.answers().parallel
    rows = [["streams", "aggregate tok/s", "per-stream tok/s", "TTFT median ms", "wall s"]]
    section = Section(f"Concurrency (parallel = {parallel} slots)", rows)
    with stack.proxy_client() as warm:
        run_once(warm, stack.proxy_url, model, 8)
    single = 0.0
    for streams in (1, 2, 4):
        aggs, per, ttft, walls = [], [], [], []
        for _ in range(ROUNDS):
            clients = [stack.proxy_client() for _ in range(streams)]
            start = time.perf_counter()
            with ThreadPoolExecutor(streams) as pool:
                samples: list[Sample] = list(pool.map(
                    lambda c: run_once(c, stack.proxy_url, model, TOKENS, prompt=PROMPT), clients))
            wall = time.perf_counter() - start
            for c in clients:
                c.close()
            aggs.append(sum(s.gen_tokens for s in samples) / wall)
            per += [s.client_gen_tps or 0 for s in samples]
            ttft += [s.ttft_ms for s in samples]
            walls.append(wall)
        agg = median(aggs)
        single = single or agg
        rows.append([str(streams), fmt(agg), fmt(median(per)), fmt(median(ttft)),
                     fmt(median(walls), 2)])
        if streams > 1:
            section.ratios.append((f"aggregate at {streams} / at 1 stream", agg / single,
                                   "report", None))
    gains = [r[1] for r in section.ratios if isinstance(r[1], float)]
    if gains and max(gains) < 1.15:
        section.notes.append(
            "the aggregate stays flat: with two cores the engine's threads already use both, "
            "and these tiny models are compute-bound (see the roofline), so batching streams "
            "shares the same throughput instead of adding to it; parallel slots still keep "
            "every client streaming instead of queueing. Memory-bound larger models and more "
            "cores gain from batching.")
    section.notes.append(f"{TOKENS} tokens per stream after a short prompt, median of {ROUNDS} "
                         f"rounds; streams beyond {parallel} slots wait in the engine's queue; "
                         "aggregate = all generated tokens / wall clock (prefill included).")
    return section


if __name__ == "__main__":
    standalone(run)
