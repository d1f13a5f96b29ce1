"""Thread auto-tune on the running stack: each candidate goes through the normal apply path
(engine restart, readiness wait), then a short benchmark straight against the engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from appliance.answers.schema import Answers
from appliance.apply.probes import engine_url
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context
from appliance.perf.bench import benchmark


def autotune(answers: Answers, ctx: Context, *, max_tokens: int = 48, repetitions: int = 2,
             budget_s: float = 300.0, keep_best: bool = False,
             on_result: Callable[[int, float], None] | None = None) -> TuneResult:
    """Measure thread counts; afterwards the original answers are applied again, or the best
    thread count when ``keep_best``."""
    candidates = thread_candidates(ctx.facts.physical_cores, ctx.facts.logical_cpus)

    def measure(threads: int) -> float:
        result = apply_answers(answers.replace(threads=threads), ctx, "tune")
        model = result.plan.resolved.model_id
        url = engine_url(result.plan.engine_listen) + "/v1"  # a switch moves it between ports
        with httpx.Client(timeout=120) as client:
            return benchmark(client, url, model, max_tokens=max_tokens,
                             repetitions=repetitions, threads=threads).generation.mean

    try:
        result = tune(candidates, measure, on_result=on_result, budget_s=budget_s)
    finally:
        apply_answers(answers, ctx, "tune")
    if keep_best:
        apply_answers(answers.replace(threads=result.best), ctx, "tune")
    return result


def thread_candidates(physical: int, logical: int) -> list[int]:
    """Physical cores first (llama.cpp's own default), then neighbours and half, then logical;
    never more than the logical CPUs. Generation is memory-bound, so the best is usually at or
    below the physical core count; SMT siblings rarely help and contended vCPUs can halve it."""
    physical = max(1, min(physical, logical))
    order = [physical, physical - 1, physical // 2, physical + 1, physical // 4,
             (physical + logical) // 2, logical, physical - 2, physical + 2]
    out: list[int] = []
    for t in order:
        if 1 <= t <= logical and t not in out:
            out.append(t)
    return out


@dataclass
class TuneResult:
    best: int
    measured: dict[int, float]
    stopped_early: bool


def tune(candidates: list[int], measure: Callable[[int], float], patience: int = 2,
         on_result: Callable[[int, float], None] | None = None,
         budget_s: float | None = None,
         clock: Callable[[], float] = time.monotonic) -> TuneResult:
    """Measure candidates in order; stop after ``patience`` results in a row below the best,
    or when ``budget_s`` is spent (the wizard shows progress, so the wait is bounded)."""
    measured: dict[int, float] = {}
    best: int | None = None
    worse = 0
    start = clock()
    for n, t in enumerate(candidates):
        tps = measure(t)
        measured[t] = tps
        if on_result:
            on_result(t, tps)
        if best is None or tps > measured[best]:
            best, worse = t, 0
        else:
            worse += 1
        left = n < len(candidates) - 1
        over = budget_s is not None and clock() - start > budget_s
        if left and (worse >= patience or over):
            return TuneResult(best, measured, True)
    assert best is not None, "no candidates"
    return TuneResult(best, measured, False)
