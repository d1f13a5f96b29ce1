"""Run every benchmark side by side on one sandbox stack; write docs/performance.md."""

from __future__ import annotations

import datetime as dt
import sys
import time

from bench import (
    accuracy,
    apply_cost,
    concurrency,
    guard,
    lb,
    proxy,
    roofline,
    tui_startup,
    tuning,
)
from bench.common import ROOT, Stack, machine

MODULES = {"accuracy": accuracy, "tuning": tuning, "proxy": proxy, "roofline": roofline,
           "concurrency": concurrency, "apply": apply_cost, "tui": tui_startup, "lb": lb,
           "guard": guard}


def main(argv: list[str]) -> int:
    chosen = argv or list(MODULES)
    stack = Stack()
    parts = []
    started = time.monotonic()
    try:
        for name in chosen:
            section = MODULES[name].run(stack)
            section.print()
            parts.append(section.markdown())
    finally:
        stack.close()
    details = "\n".join(f"| {k} | {v} |" for k, v in machine().items())
    doc = (f"# Performance\n\nWritten by `bench/run_all.py` on "
           f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {time.monotonic() - started:.0f} s. "
           "Every ratio compares two things measured side by side in the same run on the same "
           "sandbox stack (SmolLM2-135M Q4_1 unless a row names another model).\n\n"
           f"| machine | |\n|---|---|\n{details}\n\n" + "\n".join(parts))
    if set(chosen) == set(MODULES):
        (ROOT / "docs" / "performance.md").write_text(doc)
        print("wrote docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
