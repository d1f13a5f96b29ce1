"""Roofline: measured memory bandwidth vs the bytes each generated token must read.

Batch-1 decoding reads every weight once per token, so tokens/s <= bandwidth / bytes per token
(weights + the KV cache read at the current depth).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import httpx

from appliance.perf.bench import benchmark
from appliance.plan.gguf import read_info
from bench.common import Section, Stack, each_model, fmt, standalone

MODELS = ("smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m")
TOKENS = 64


def bandwidth(threads: int) -> float:
    src = Path(__file__).with_name("stream.c")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "stream"
        subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", str(src), "-o", str(exe)],
                       check=True)
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True,
                             env={"OMP_NUM_THREADS": str(threads)}).stdout.split()
    return float(out[0]) * 1e9


def run(stack: Stack) -> Section:
    threads = stack.context().facts.auto_threads()
    bw = bandwidth(threads)
    rows = [["model", "file MB", "KV bytes/token", "depth", "bytes/token MB", "ceiling tok/s",
             "measured tok/s", "fraction of ceiling"]]
    section = Section("Roofline: memory bandwidth vs bytes per token", rows)
    for model_id, res in each_model(stack, MODELS):
        path = stack.layout.map(res.plan.resolved.model_path)
        with httpx.Client(timeout=300) as c:
            r = benchmark(c, stack.engine_url, model_id, max_tokens=TOKENS, repetitions=3)
        depth = r.samples[0].prompt_tokens + TOKENS // 2
        kv = read_info(path).kv_bytes_per_token or 0
        per_token = path.stat().st_size + kv * depth
        ceiling = bw / per_token
        frac = r.generation.mean / ceiling
        rows.append([model_id, fmt(path.stat().st_size / 1e6), str(kv), str(depth),
                     fmt(per_token / 1e6, 2), fmt(ceiling), fmt(r.generation.mean),
                     f"{frac:.2f}"])
        section.ratios.append((f"{model_id}: measured / bandwidth ceiling", frac,
                               "report (0.5-0.7 typical)", None))
    section.notes.append(f"memory bandwidth {bw / 1e9:.1f} GB/s (STREAM triad, {threads} "
                         "threads, 1.5 GB working set, best of 8).")
    section.notes.append("below the ceiling because these tiny models are compute-bound on two "
                         "cores, not bandwidth-bound: generation still gains from a second "
                         "thread (see the tuning sweep), which a bandwidth-bound decode would "
                         "not; a 2-4 GB model such as Phi-3 mini sits much closer to the "
                         "ceiling. Tied embeddings (SmolLM2, Gemma 3) make the output layer "
                         "read the whole embedding table, so the file size is the right count.")
    return section


if __name__ == "__main__":
    standalone(run)
