"""What the Speed screen says about numbers: pure functions, so wording is tested directly."""

from __future__ import annotations

from typing import Any

from .base import plural

WORDS_PER_TOKEN = 0.75  # English text averages about 3/4 of a word per token
READING_WORDS_PER_S = 4  # a person reads about 4 words a second


def reading(tokens_per_s: float) -> str:
    """A plain reading of a generation speed."""
    words = tokens_per_s * WORDS_PER_TOKEN
    pace = ("faster than anyone reads" if words >= 2 * READING_WORDS_PER_S else
            "about reading speed" if words >= READING_WORDS_PER_S / 2 else
            "slower than reading: answers appear word by word")
    return f"~{words:.0f} words/s, {pace}"


def bench_summary(result: Any) -> str:
    """One statistic (the median) with its spread, what it means, and the context."""
    g = result.generation
    n = len(result.samples)
    threads = f" on {plural(result.threads, 'thread')}" if result.threads else ""
    return (f"[b]{g.median:.1f} tok/s[/] generation, median of {plural(n, 'run')} "
            f"(range {g.min:.1f}-{g.max:.1f}){threads}: {reading(g.median)}.\n"
            f"Prompt {result.prompt.median:.0f} tok/s, first token {result.ttft.median:.0f} ms "
            "(median). Measured through nginx, as clients get it.")


def tune_summary(result: Any) -> str:
    best = result.best
    tps = result.measured[best]
    early = " (stopped early: the next candidates were slower)" if result.stopped_early else ""
    return (f"Best: [b]{plural(best, 'thread')}[/] at {tps:.1f} tok/s ({reading(tps)})"
            f"{early}. Set above; Review to apply it.")


def busy_warning(load: float, cores: int) -> str | None:
    """Other work skews every measurement: say so before the numbers mislead."""
    if cores > 0 and load >= max(1.0, cores / 2):
        return (f"[yellow]This machine is busy (load {load:.1f} on {plural(cores, 'CPU')}): "
                "numbers will be low and noisy. Measure again when it is idle.[/]")
    return None


def slot_hint(context: Any, parallel: Any) -> str:
    """How the context is shared (the core's wording, as Review says it), once both are
    whole numbers; the gate judges the values."""
    from appliance.apply.summary import slot_share

    if isinstance(context, int) and isinstance(parallel, int) and context > 0 and parallel > 0:
        return (f"{slot_share(context, parallel)}: up to {plural(parallel, 'request')} at "
                "once")
    return ""
