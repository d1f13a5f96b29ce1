"""Apply cost: a no-op apply (in process and as the CLI) and a threads change until ready."""

from __future__ import annotations

import subprocess
import sys
import time

from appliance.apply.run import apply_answers
from bench.common import Section, Stack, median, standalone

REPS = 5


def run(stack: Stack) -> Section:
    ctx, answers = stack.context(), stack.answers()
    apply_answers(answers, ctx, "bench")
    inproc, cli, change = [], [], []
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
    try:
        for n in range(3):
            t = time.perf_counter()
            apply_answers(answers.replace(threads=other if n % 2 == 0 else "auto"), ctx, "bench")
            change.append(time.perf_counter() - t)
    finally:
        apply_answers(answers, ctx, "bench")
    rows = [["operation", "median s", "min s", "max s"],
            ["no-op apply, in process", f"{median(inproc):.3f}", f"{min(inproc):.3f}",
             f"{max(inproc):.3f}"],
            ["no-op apply, `wizard --apply` CLI", f"{median(cli):.3f}", f"{min(cli):.3f}",
             f"{max(cli):.3f}"],
            ["threads change until ready + verified", f"{median(change):.3f}",
             f"{min(change):.3f}", f"{max(change):.3f}"]]
    section = Section("Apply cost", rows)
    section.ratios.append(("no-op apply via CLI (s)", median(cli), "< 1 s", median(cli) < 1))
    section.notes.append("a no-op reads the files, compares, checks the services and writes "
                         "nothing; the threads change restarts only the engine and returns "
                         "after /health is 200 and nginx serves the new state end to end.")
    return section


if __name__ == "__main__":
    standalone(run)
