"""Accuracy: our benchmark's generation tokens/s vs llama-bench, same model, threads, tokens.

llama-bench measures generation at a KV depth equal to our prompt length (-d), so both
numbers describe the same work; ours is taken before and after llama-bench and averaged.
"""

from __future__ import annotations

import json
import subprocess

import httpx

from appliance.perf.bench import benchmark
from bench.common import Section, Stack, each_model, fmt, llama_bin, standalone

TOKENS, REPS = 64, 5
MODELS = ("smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m")


def llama_bench(model: str, threads: int, depth: int) -> tuple[float, float]:
    p = subprocess.run([llama_bin("llama-bench"), "-m", model, "-t", str(threads), "-p", "0",
                        "-n", str(TOKENS), "-d", str(depth), "-r", str(REPS), "-o", "json"],
                       capture_output=True, text=True, timeout=900, check=True)
    row = next(r for r in json.loads(p.stdout) if r["n_gen"] == TOKENS)
    return float(row["avg_ts"]), float(row["stddev_ts"])


def run(stack: Stack) -> Section:
    rows = [["model", "threads", "depth", "ours (engine timings)", "ours (client count)",
             "llama-bench tg", "ratio engine", "ratio client"]]
    section = Section("Accuracy: benchmark vs llama-bench", rows)
    for model_id, result in each_model(stack, MODELS):
        threads = result.plan.resolved.threads
        path = str(stack.layout.map(result.plan.resolved.model_path))
        runs = []
        with httpx.Client(timeout=300) as c:
            runs.append(benchmark(c, stack.engine_url, model_id, max_tokens=TOKENS,
                                  repetitions=REPS))
            depth = round(sum(s.prompt_tokens for s in runs[0].samples) / REPS) + TOKENS // 2
            lb, lb_sd = llama_bench(path, threads, depth)
            runs.append(benchmark(c, stack.engine_url, model_id, max_tokens=TOKENS,
                                  repetitions=REPS))
        engine = sum(r.generation.mean for r in runs) / 2
        client = sum(s.client_gen_tps or 0 for r in runs for s in r.samples) / (2 * REPS)
        rows.append([model_id, str(threads), str(depth), fmt(engine), fmt(client),
                     f"{fmt(lb)} ± {fmt(lb_sd)}", fmt(engine / lb, 3), fmt(client / lb, 3)])
        section.ratios.append((f"{model_id}: ours / llama-bench", engine / lb, "0.9-1.1",
                               0.9 <= engine / lb <= 1.1))
        section.ratios.append((f"{model_id}: client-counted / llama-bench", client / lb,
                               "0.9-1.1", 0.9 <= client / lb <= 1.1))
    section.notes.append(f"{TOKENS} generated tokens, {REPS} repetitions each; llama-bench "
                         "`-p 0 -n 64 -d <our prompt + half the output>` so both generate at "
                         "the same KV depth.")
    return section


if __name__ == "__main__":
    standalone(run)
