"""An engine's failure in one line: the cause, found in its log tail (pure).

A crashed llama-server ends its log with a gdb backtrace and generic exit lines; the line an
operator needs ("failed to allocate buffer", "error loading model") is further up. The
patterns go from the most specific root cause to the most generic symptom; within one pattern
the earliest line wins (later lines are consequences).
"""

from __future__ import annotations

import re

CAUSES: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.I) for p in (
    r"failed to allocate|cannot allocate|out of memory|bad_alloc|unable to allocate",
    r"error while handling argument|invalid argument|unknown argument|invalid value",
    r"error loading model|failed to load model|unable to load model|not a gguf|invalid magic",
    r"couldn't bind|address already in use|failed to bind",
    r"GGML_ASSERT|assertion .* failed|terminate called",
    r"permission denied|no such file or directory",
    r"\berror\b|\bfailed\b|\bfatal\b",
))
NOISE = re.compile(
    r"^\s*(#\d+\s|0x[0-9a-f]+|\[New LWP|\[Thread debugging|\[Inferior|Using host libthread_db"
    r"|warning: process \d+|ptrace|No symbol table|--- start|\(gdb\)|\d+\s+(\.\./|in \.\./))", re.I)
PREFIX = re.compile(r"^(\d+\.\d\d\.\d{3}\.\d{3} [DIWE] +|\d{4}-\d\d-\d\d[T ][\d:.]+Z?\s+"
                    r"|\[\s*[\d.]+\]\s+)")
MAX_LEN = 200


def cause_line(log_tail: str) -> str | None:
    """The line that says why the engine failed, trimmed of timestamps; None if none does."""
    lines = [line.strip() for line in log_tail.splitlines()]
    lines = [line for line in lines if line and not NOISE.match(line)]
    for pattern in CAUSES:
        for n, line in enumerate(lines):
            if pattern.search(line):
                text = PREFIX.sub("", line).strip()
                after = lines[n + 1] if n + 1 < len(lines) else ""
                if after.startswith("what():"):  # C++: the exception's message is on the next line
                    text += ": " + after.removeprefix("what():").strip()
                return text if len(text) <= MAX_LEN else text[:MAX_LEN - 3] + "..."
    return None


def with_cause(reason: str, log_tail: str) -> str:
    """``reason: cause`` when the log names one, so the cause leads any error dialog."""
    cause = cause_line(log_tail)
    reason = reason.rstrip(": ")
    return f"{reason}: {cause}" if cause and cause not in reason else reason
