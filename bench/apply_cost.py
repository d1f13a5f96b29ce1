"""Apply cost: a no-op apply (in process and as the CLI), and a threads change both ways, side
by side: the zero-downtime switch (RAM fits two engines) and the restart in place (low RAM
simulated through the facts), with the longest gap a client polling every 100 ms sees."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

from appliance.answers.schema import Answers
from appliance.apply.run import apply_answers, make_plan
from appliance.apply.runtime import Context
from bench.common import Section, Stack, median, standalone
from bench.gap import Poller

REPS = 5
CHANGES = 4  # even: each series ends where it started
LOW_RAM = 64 << 20


def _changes(stack: Stack, ctx: Context, answers: Answers, other: int | str
             ) -> tuple[list[float], list[float], list[int]]:
    """Apply threads changes back and forth; durations, client gaps and announced gaps (s)."""
    took, gaps, announced = [], [], []
    with stack.proxy_client() as client:
        for n in range(CHANGES):
            new = answers.replace(threads=other if n % 2 == 0 else "auto")
            announced.append(make_plan(new, ctx, "bench").engine_step.gap_s)
            with Poller(client, stack.proxy_url + "/models", {}) as poll:
                t = time.perf_counter()
                apply_answers(new, ctx, "bench")
                took.append(time.perf_counter() - t)
                time.sleep(0.3)
            gaps.append(poll.longest_gap())
    return took, gaps, announced


def _row(name: str, values: list[float]) -> list[str]:
    return [name, f"{median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}"]


def run(stack: Stack) -> Section:
    ctx, answers = stack.context(), stack.answers()
    apply_answers(answers, ctx, "bench")
    inproc, cli = [], []
    path = stack.layout.map(stack.layout.applied_answers)
    for _ in range(REPS):
        t = time.perf_counter()
        assert apply_answers(answers, ctx, "bench").noop
        inproc.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wizard", "--root", str(stack.root), "--apply",
                        str(path)], check=True, capture_output=True)
        cli.append(time.perf_counter() - t)
    other = 1 if ctx.facts.auto_threads() != 1 else 2
    low = dataclasses.replace(ctx, facts=dataclasses.replace(ctx.facts, mem_available=LOW_RAM))
    try:
        switch, switch_gaps, _ = _changes(stack, ctx, answers, other)
        restart, restart_gaps, announced = _changes(stack, low, answers, other)
    finally:
        apply_answers(answers, ctx, "bench")
    ms = [f"{g * 1000:.0f}" for g in restart_gaps]
    rows = [["operation", "median s", "min s", "max s"],
            _row("no-op apply, in process", inproc),
            _row("no-op apply, `wizard --apply` CLI", cli),
            _row("threads change, zero-downtime switch, until verified", switch),
            _row("threads change, restart in place (low RAM), until verified", restart),
            _row("client gap (503s), switch", switch_gaps),
            _row("client gap (503s), restart in place", restart_gaps)]
    section = Section("Apply cost", rows)
    section.ratios += [
        ("no-op apply via CLI (s)", median(cli), "< 1 s", median(cli) < 1),
        ("longest client gap, switch (s)", max(switch_gaps), "0 (only 200s)",
         max(switch_gaps) == 0),
        ("longest client gap / announced, restart in place", max(
            g / max(a, 1) for g, a in zip(restart_gaps, announced, strict=True)), "<= 1",
         all(g <= a for g, a in zip(restart_gaps, announced, strict=True)))]
    section.notes += [
        "a no-op reads the files, compares, checks the services and writes nothing.",
        "switch: the new engine starts beside the old one on the spare port, nginx reloads "
        "onto it once /health is 200, the old one stops after nginx's old workers exit; a "
        "client polls /v1/models through nginx every 100 ms.",
        f"restart in place (MemAvailable set to {LOW_RAM >> 20} MiB through the facts): "
        f"gaps {', '.join(ms)} ms against announced {', '.join(f'{a} s' for a in announced)}."]
    return section


if __name__ == "__main__":
    standalone(run)
