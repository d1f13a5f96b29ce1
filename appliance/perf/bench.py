"""Live benchmark over the OpenAI-compatible streaming API, engine-agnostic.

Measures time to first token, prompt and generation tokens/s with their spread. Prefers the
engine's own timings (llama-server ``timings``; LocalAI ``usage.timing_*`` when asked with the
``Extra-Usage`` header) and falls back to counting events on the client. An error inside a 200
stream (LocalAI sends backend failures as content) is an error, not a fast result.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from appliance.errors import ApplianceError

# ~128 tokens of plain English for every tokenizer we ship; the same text each time.
PROMPT = ("Write a short, plain description of how a river forms, flows and reaches the sea. "
          "Mention rain, springs, streams, valleys, meanders, deltas and the water cycle. ") * 4


class BenchError(ApplianceError):
    """The engine failed during a benchmark request."""


@dataclass(frozen=True)
class Sample:
    ttft_ms: float
    prompt_tokens: int
    prompt_tps: float | None
    gen_tokens: int
    gen_tps: float
    client_gen_tps: float | None
    source: str  # "engine" (its own timings) or "client" (counted here)
    gaps_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class Spread:
    mean: float
    median: float
    stdev: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        v = list(values)
        if not v:
            return cls(0.0, 0.0, 0.0, 0.0, 0.0)
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        return cls(statistics.fmean(v), statistics.median(v), sd, min(v), max(v))


@dataclass
class BenchResult:
    model: str
    threads: int | None
    samples: list[Sample]
    generation: Spread = field(init=False)
    prompt: Spread = field(init=False)
    ttft: Spread = field(init=False)

    def __post_init__(self) -> None:
        self.generation = Spread.of(s.gen_tps for s in self.samples)
        self.prompt = Spread.of(s.prompt_tps for s in self.samples if s.prompt_tps is not None)
        self.ttft = Spread.of(s.ttft_ms for s in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threads": self.threads,
            "generation_tokens_per_s": round(self.generation.mean, 2),
            "prompt_tokens_per_s": round(self.prompt.mean, 2),
            "ttft_ms": round(self.ttft.median, 1),
            "spread": {"generation": asdict(self.generation), "prompt": asdict(self.prompt),
                       "ttft_ms": asdict(self.ttft)},
            "repetitions": len(self.samples),
            "timing_source": self.samples[0].source if self.samples else None,
        }


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments (": ping"), blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise BenchError(f"unreadable stream event: {data[:120]}") from None
        if isinstance(event, dict) and "error" in event:
            err = event["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            raise BenchError(f"engine error in stream: {msg}")
        yield event


def run_once(client: httpx.Client, url: str, model: str, max_tokens: int,
             headers: dict[str, str] | None = None, prompt: str = PROMPT,
             clock: Callable[[], float] = time.perf_counter) -> Sample:
    """One streamed completion; ``url`` is the base ending in /v1."""
    body = {"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": prompt}],
            "ignore_eos": True, "cache_prompt": False,  # fixed lengths, real prefill
            "stream_options": {"include_usage": True}}
    hdrs = {"Extra-Usage": "true", **(headers or {})}
    start = clock()
    times: list[float] = []
    timings: dict[str, Any] | None = None
    usage: dict[str, Any] = {}
    with client.stream("POST", f"{url}/chat/completions", json=body, headers=hdrs) as r:
        if r.status_code != 200:
            r.read()
            raise BenchError(f"HTTP {r.status_code}: {r.text[:200]}")
        for event in _events(r.iter_lines()):
            for choice in event.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if content.startswith("Internal error:"):
                        raise BenchError(f"engine error in stream: {content[:200]}")
                    times.append(clock())
            timings = event.get("timings") or timings
            usage = event.get("usage") or usage
    if not times:
        raise BenchError("the stream carried no tokens")
    ttft = (times[0] - start) * 1000
    gaps = tuple((b - a) * 1000 for a, b in itertools.pairwise(times))
    client_tps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and \
        times[-1] > times[0] else None
    if timings and timings.get("predicted_per_second"):
        return Sample(ttft, int(timings.get("prompt_n", 0)), timings.get("prompt_per_second"),
                      int(timings.get("predicted_n", len(times))),
                      float(timings["predicted_per_second"]), client_tps, "engine", gaps)
    if usage.get("timing_token_generation"):  # LocalAI Extra-Usage, in milliseconds
        n = int(usage.get("completion_tokens", len(times)))
        p = int(usage.get("prompt_tokens", 0))
        pp_ms = float(usage.get("timing_prompt_processing") or 0)
        return Sample(ttft, p, p / (pp_ms / 1000) if pp_ms else None, n,
                      n / (float(usage["timing_token_generation"]) / 1000), client_tps, "engine",
                      gaps)
    p = int(usage.get("prompt_tokens", 0))
    return Sample(ttft, p, p / (ttft / 1000) if p and ttft else None, len(times),
                  client_tps or 0.0, client_tps, "client", gaps)


def benchmark(client: httpx.Client, url: str, model: str, *, max_tokens: int = 64,
              repetitions: int = 3, warmup: int = 1, threads: int | None = None,
              headers: dict[str, str] | None = None,
              on_sample: Callable[[int, Sample], None] | None = None,
              clock: Callable[[], float] = time.perf_counter) -> BenchResult:
    for _ in range(warmup):
        run_once(client, url, model, min(max_tokens, 8), headers, clock=clock)
    samples = []
    for n in range(repetitions):
        s = run_once(client, url, model, max_tokens, headers, clock=clock)
        samples.append(s)
        if on_sample:
            on_sample(n, s)
    return BenchResult(model, threads, samples)


# -- thread tuning -------------------------------------------------------------------------

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
