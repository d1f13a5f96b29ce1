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

from appliance.errors import BenchError
from appliance.host.paths import Layout

# ~128 tokens of plain English for every tokenizer we ship; the same text each time.
PROMPT = ("Write a short, plain description of how a river forms, flows and reaches the sea. "
          "Mention rain, springs, streams, valleys, meanders, deltas and the water cycle. ") * 4


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
            "runs": [{"prompt_tokens": s.prompt_tokens, "generated_tokens": s.gen_tokens,
                      "generation_tokens_per_s": round(s.gen_tps, 2),
                      "prompt_tokens_per_s": round(s.prompt_tps or 0, 2),
                      "ttft_ms": round(s.ttft_ms, 1)} for s in self.samples],
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


def bench_local(layout: Layout, on_sample: Callable[[int, Sample], None] | None = None, *,
                repetitions: int = 3, tokens: int = 64) -> BenchResult:
    """The running stack measured through nginx (TLS, key), as its clients see it: the one
    measurement behind ``wizard bench`` and the wizard's Benchmark button."""
    from appliance.status import local_client

    api = local_client(layout)
    with httpx.Client(verify=api.verify, timeout=300) as client:
        return benchmark(client, api.base_url, api.model, max_tokens=tokens,
                         repetitions=repetitions, threads=api.threads, headers=api.headers,
                         on_sample=on_sample)
