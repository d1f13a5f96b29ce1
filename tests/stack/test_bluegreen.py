"""Engine changes on the real stack: a switch beside the serving engine when RAM allows (no
client sees an error), a restart in place within the announced gap when it does not."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from appliance.answers.schema import parse
from appliance.apply.run import apply_answers, make_plan
from appliance.apply.runtime import Context
from appliance.host.facts import detect
from appliance.host.site import load_site
from appliance.plan.state import load_state
from appliance.plan.strategy import Strategy
from bench.gap import Poller
from tests.broken_model import broken_model
from tests.conftest import SMOLLM, Stack

pytestmark = pytest.mark.stack


def context(s: Stack, **facts: int) -> Context:
    return Context(s.layout, load_site(s.layout), dataclasses.replace(detect(), **facts),
                   s.services)


def test_threads_change_that_fits_switches_with_no_error(fresh: Stack) -> None:
    s = fresh
    ctx = context(s)
    before = load_state(s.layout)["engine_unit"]
    new = parse({"threads": 1}, "test", parse(load_site(s.layout).defaults or {}))
    assert make_plan(new, ctx).engine_step.strategy is Strategy.SWITCH
    nginx = s.services.pid("nginx.service")
    with s.client(timeout=10) as c, Poller(c, "/v1/models", s.auth()) as poll:
        result = apply_answers(new, ctx, "test")
    assert len(poll.samples) >= 5 and set(poll.statuses) == {200}, poll.statuses
    after = load_state(s.layout)
    assert after["engine_unit"] != before and after["threads"] == 1
    assert result.actions[-1] == f"stop {before}"
    assert not s.services.is_active(before) and s.services.is_active(after["engine_unit"])
    assert s.services.pid("nginx.service") == nginx  # reloaded, not restarted
    assert after["engine_load_s"][SMOLLM][-1] > 0


def test_stream_in_flight_finishes_on_the_old_engine(fresh: Stack) -> None:
    s = fresh
    body = {"messages": [{"role": "user", "content": "Tell a long story about a cat."}],
            "max_tokens": 24, "temperature": 0, "stream": True}
    events: list[str] = []
    started = threading.Event()

    def stream() -> None:
        with s.client(timeout=120) as c, c.stream("POST", "/v1/chat/completions",
                                                  headers=s.auth(), json=body) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                    started.set()

    t = threading.Thread(target=stream)
    t.start()
    assert started.wait(60)
    s.apply("threads: 1\n")
    t.join(120)
    assert events[-1] == "data: [DONE]" and len(events) > 5


def test_failed_new_engine_leaves_the_old_one_serving(fresh: Stack) -> None:
    s = fresh
    unit = load_state(s.layout)["engine_unit"]
    pid = s.services.pid(unit)
    with broken_model(s) as path:
        with s.client(timeout=10) as c, Poller(c, "/v1/models", s.auth()) as poll:
            p = s.apply(f"model:\n  path: {path}\n", check=False)
        assert p.returncode == 1 and "previous configuration restored" in p.stderr
        first = p.stderr.splitlines()[0]  # the engine's cause comes first, not the log tail
        assert "llama-server" in first and "model is corrupted" in first, first
        assert set(poll.statuses) == {200}, poll.statuses
        assert s.services.pid(unit) == pid and load_state(s.layout)["engine_unit"] == unit
        # The failed instance is stopped, not left to its Restart=on-failure: nothing starts
        # it again after RestartSec (3 s), beside the serving engine.
        time.sleep(4)
        assert not _processes_with(str(s.layout.map(path))), _processes_with(
            str(s.layout.map(path)))


def _processes_with(arg: str) -> list[str]:
    """Command lines of the running processes that have ``arg`` among their arguments."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue  # gone meanwhile
        if arg.encode() in args:
            found.append(b" ".join(args).decode(errors="replace"))
    return found


def test_low_ram_restarts_in_place_within_the_announced_gap(fresh: Stack) -> None:
    s = fresh
    ctx = context(s, mem_available=64 << 20)
    new = parse({"threads": 1}, "test", parse(load_site(s.layout).defaults or {}))
    step = make_plan(new, ctx).engine_step
    assert step.strategy is Strategy.RESTART and "MiB is available" in step.reason
    unit = load_state(s.layout)["engine_unit"]
    with s.client(timeout=10) as c, Poller(c, "/v1/models", s.auth()) as poll:
        apply_answers(new, ctx, "test")
        # The apply has verified the stack; let the poller see it too, or the gap stays open.
        deadline = time.monotonic() + 10
        while poll.statuses[-1:] != [200] and time.monotonic() < deadline:
            time.sleep(0.05)
    gap = poll.longest_gap()
    assert 503 in poll.statuses and 0 < gap <= step.gap_s, (gap, step)
    assert load_state(s.layout)["engine_unit"] == unit  # in place
    print(json.dumps({"announced_s": step.gap_s, "measured_ms": round(gap * 1000)}))
