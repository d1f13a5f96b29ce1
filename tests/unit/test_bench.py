"""Benchmark statistics and tuning policy, with a fake streaming engine and a fake clock."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from appliance.errors import BenchError
from appliance.perf.bench import Spread, benchmark, run_once
from appliance.perf.tuning import thread_candidates, tune


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def sse(events: list[object]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


class Stepper(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def engine(clock: FakeClock, *, ttft: float, gap: float, tokens: int,
           final: dict[str, object] | None = None,
           error_at: int | None = None) -> httpx.MockTransport:
    """A streaming engine whose events arrive at controlled times on ``clock``: the clock
    advances while the client reads, as on a real wire."""

    def chunks() -> Iterator[bytes]:
        clock.t += ttft
        yield b'data: {"choices": [{"delta": {"role": "assistant", "content": null}}]}\n\n'
        for n in range(tokens):
            if n:
                clock.t += gap
            text = "Internal error: rpc EOF" if error_at == n else "x"
            yield f'data: {json.dumps({"choices": [{"delta": {"content": text}}]})}\n\n'.encode()
        yield b": ping\n\n"
        yield sse([{"choices": [{"delta": {}, "finish_reason": "length"}], **(final or {})}])

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["stream"] and body["max_tokens"] and body["ignore_eos"]
        assert request.headers["extra-usage"] == "true"
        return httpx.Response(200, stream=Stepper(chunks()))

    return httpx.MockTransport(handler)


def test_engine_timings_win_over_client_counting() -> None:
    clock = FakeClock()
    timings = {"prompt_n": 120, "prompt_per_second": 600.0, "predicted_n": 32,
               "predicted_per_second": 50.0}
    transport = engine(clock, ttft=0.2, gap=0.02, tokens=32, final={"timings": timings})
    with httpx.Client(transport=transport) as c:
        s = run_once(c, "http://e/v1", "m", 32, clock=clock)
    assert (s.source, s.gen_tps, s.prompt_tps, s.prompt_tokens) == ("engine", 50.0, 600.0, 120)
    assert s.client_gen_tps == pytest.approx(50.0)


def test_client_side_counting_with_real_arrival_times() -> None:
    clock = FakeClock()
    transport = engine(clock, ttft=0.25, gap=0.02, tokens=51,
                       final={"usage": {"prompt_tokens": 100}})
    with httpx.Client(transport=transport) as c:
        s = run_once(c, "http://e/v1", "m", 51, clock=clock)
    assert s.source == "client"
    assert s.ttft_ms == pytest.approx(250.0)
    assert s.gen_tps == pytest.approx(50.0)  # 50 gaps of 20 ms
    assert s.prompt_tps == pytest.approx(400.0)  # 100 prompt tokens within the first 250 ms
    assert len(s.gaps_ms) == 50 and max(s.gaps_ms) == pytest.approx(20.0)


def test_localai_extra_usage_timings() -> None:
    clock = FakeClock()
    usage = {"prompt_tokens": 80, "completion_tokens": 40, "timing_prompt_processing": 200.0,
             "timing_token_generation": 1000.0}
    with httpx.Client(transport=engine(clock, ttft=0.1, gap=0.01, tokens=40,
                                       final={"usage": usage})) as c:
        s = run_once(c, "http://e/v1", "m", 40, clock=clock)
    assert (s.source, s.gen_tps, s.prompt_tps) == ("engine", 40.0, 400.0)


def test_error_inside_a_200_stream_is_an_error() -> None:
    clock = FakeClock()
    with httpx.Client(transport=engine(clock, ttft=0.1, gap=0.01, tokens=10, error_at=3)) as c, \
            pytest.raises(BenchError, match="Internal error"):
        run_once(c, "http://e/v1", "m", 10, clock=clock)
    err = httpx.MockTransport(lambda r: httpx.Response(200, content=sse([{"error": {
        "message": "exceed_context_size_error"}}])))
    with httpx.Client(transport=err) as c, pytest.raises(BenchError, match="exceed_context"):
        run_once(c, "http://e/v1", "m", 10, clock=clock)
    empty = httpx.MockTransport(lambda r: httpx.Response(200, content=b"data: [DONE]\n\n"))
    with httpx.Client(transport=empty) as c, pytest.raises(BenchError, match="no tokens"):
        run_once(c, "http://e/v1", "m", 10, clock=clock)
    denied = httpx.MockTransport(lambda r: httpx.Response(401, json={"error": "no"}))
    with httpx.Client(transport=denied) as c, pytest.raises(BenchError, match="HTTP 401"):
        run_once(c, "http://e/v1", "m", 10, clock=clock)


def test_benchmark_warms_up_then_reports_spread() -> None:
    clock = FakeClock()
    calls: list[int] = []
    gaps = iter([0.02, 0.02, 0.025, 0.02])  # warm-up, then three measured runs

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["max_tokens"])
        gap = next(gaps)

        def chunks() -> Iterator[bytes]:
            clock.t += 0.1
            for n in range(11):
                if n:
                    clock.t += gap
                yield b'data: {"choices": [{"delta": {"content": "y"}}]}\n\n'
            yield b"data: [DONE]\n\n"

        return httpx.Response(200, stream=Stepper(chunks()))

    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        r = benchmark(c, "http://e/v1", "m", max_tokens=11, repetitions=3, threads=2, clock=clock)
    assert calls == [8, 11, 11, 11]
    assert [round(s.gen_tps) for s in r.samples] == [50, 40, 50]
    assert r.generation.mean == pytest.approx(46.667, abs=0.01)
    assert r.generation.min == pytest.approx(40.0) and r.generation.stdev > 0
    out = r.to_json()
    assert {"generation_tokens_per_s", "prompt_tokens_per_s", "ttft_ms", "threads"} <= set(out)
    assert [(run["prompt_tokens"], run["generated_tokens"]) for run in out["runs"]] == [
        (0, 11)] * 3  # the KV depth of each run is known


def test_spread_of_nothing_and_one() -> None:
    assert Spread.of([]).mean == 0.0
    assert Spread.of([5.0]) == Spread(5.0, 5.0, 0.0, 5.0, 5.0)


@pytest.mark.parametrize(("physical", "logical", "expected"), [
    (1, 1, [1]), (2, 2, [2, 1]), (2, 4, [2, 1, 3, 4]), (4, 8, [4, 3, 2, 5, 1, 6, 8]),
    (8, 16, [8, 7, 4, 9, 2, 12, 16, 6, 10]), (16, 8, [8, 7, 4, 2, 6])])
def test_thread_candidates(physical: int, logical: int, expected: list[int]) -> None:
    assert thread_candidates(physical, logical) == expected


def test_tune_stops_after_two_worse_in_a_row() -> None:
    speed = {8: 20.0, 7: 21.0, 4: 18.0, 9: 17.0, 2: 30.0}
    seen: list[int] = []
    r = tune([8, 7, 4, 9, 2], lambda t: speed[t], on_result=lambda t, _: seen.append(t))
    assert (r.best, r.stopped_early, seen) == (7, True, [8, 7, 4, 9])


def test_tune_measures_all_when_improving_and_respects_the_budget() -> None:
    r = tune([1, 2, 3], lambda t: float(t))
    assert (r.best, r.stopped_early, list(r.measured)) == (3, False, [1, 2, 3])
    clock = FakeClock()

    def slow(t: int) -> float:
        clock.t += 100
        return float(t)

    r = tune([1, 2, 3, 4], slow, budget_s=150, clock=clock)
    assert (list(r.measured), r.stopped_early) == ([1, 2], True)
