"""Tuning quality: the auto-tuned thread count vs the best of an exhaustive sweep."""

from __future__ import annotations

import time

import httpx

from appliance.apply.run import apply_answers
from appliance.perf.bench import benchmark
from appliance.perf.tuning import autotune, thread_candidates
from bench.common import Section, Stack, fmt, standalone

TOKENS, REPS = 48, 3


def run(stack: Stack) -> Section:
    ctx, answers = stack.context(), stack.answers()
    facts = ctx.facts
    sweep: dict[int, float] = {}
    try:
        for t in range(1, facts.logical_cpus + 1):
            result = apply_answers(answers.replace(threads=t), ctx, "bench")
            with httpx.Client(timeout=300) as c:
                sweep[t] = benchmark(c, stack.engine_url, result.plan.resolved.model_id,
                                     max_tokens=TOKENS, repetitions=REPS).generation.mean
    finally:
        apply_answers(answers, ctx, "bench")
    start = time.monotonic()
    tuned = autotune(answers, ctx, max_tokens=TOKENS, repetitions=2)
    took = time.monotonic() - start
    best_sweep = max(sweep, key=lambda t: sweep[t])
    rows = [["threads", "sweep tok/s", "auto-tune tok/s"]]
    for t in sorted(sweep):
        rows.append([str(t), fmt(sweep[t]), fmt(tuned.measured[t]) if t in tuned.measured
                     else "not tried"])
    ratio = sweep[tuned.best] / sweep[best_sweep]
    section = Section("Tuning quality: auto-tune vs exhaustive sweep", rows)
    section.ratios.append(("sweep tok/s at the tuned count / best of sweep", ratio, ">= 0.95",
                           ratio >= 0.95))
    section.ratios.append(("tuning time (s)", f"{took:.1f}", "bounded (300 s budget)", True))
    section.notes.append(
        f"candidates {thread_candidates(facts.physical_cores, facts.logical_cpus)} from "
        f"{facts.physical_cores} physical / {facts.logical_cpus} logical CPUs; auto-tune picked "
        f"{tuned.best}, the sweep's best is {best_sweep}; each candidate is applied through the "
        "normal apply path (engine restart + readiness wait).")
    return section


if __name__ == "__main__":
    standalone(run)
