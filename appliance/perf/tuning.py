"""Thread auto-tune on the running stack: each candidate goes through the normal apply path
(engine restart, readiness wait), then a short benchmark straight against the engine."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from appliance.answers.schema import Answers
from appliance.apply.probes import engine_url
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context
from appliance.perf.bench import TuneResult, benchmark, thread_candidates, tune


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
