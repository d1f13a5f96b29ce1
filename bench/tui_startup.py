"""Time from starting `wizard` to its first interactive frame, in tmux at 80x24.

The frame counts as interactive once the status screen's buttons are drawn (the current state
then fills in from a background worker).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.common import Section, Stack, standalone

RUNS = 7


def first_frame(stack: Stack, n: int) -> float:
    name = f"startup-{n}"
    cmd = f"{sys.executable} -m wizard --root {stack.root}"
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmd],
                   check=True)
    try:
        while True:
            shown = subprocess.run(["tmux", "capture-pane", "-p", "-t", name],
                                   capture_output=True, text=True).stdout
            if "Configure" in shown:
                return time.perf_counter() - start
            if time.perf_counter() - start > 10:
                raise RuntimeError("no frame after 10 s:\n" + shown)
            time.sleep(0.005)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def run(stack: Stack) -> Section:
    first_frame(stack, 0)  # warm the page cache, as a second login would be
    times = [first_frame(stack, n) for n in range(1, RUNS + 1)]
    med = statistics.median(times)
    rows = [["runs", "median s", "min s", "max s"],
            [str(RUNS), f"{med:.3f}", f"{min(times):.3f}", f"{max(times):.3f}"]]
    section = Section("Wizard start to first interactive frame (tmux, 80x24)", rows)
    section.ratios.append(("median start to first frame (s)", med, "< 0.5 s", med < 0.5))
    section.notes.append("measured from `tmux new-session` to the frame showing the status "
                         "screen's buttons, polled every 5 ms; includes Python start-up.")
    return section


if __name__ == "__main__":
    standalone(run)
