"""The busy ratio a backend publishes for OneFlow's elasticity rules, from the engine's metrics.

llama-server's Prometheus text (``--metrics``) has ``llamacpp:requests_processing`` (slots at
work) and ``llamacpp:requests_deferred`` (waiting for a slot). CPU% is useless here: one request
already saturates every core. Pure functions; the engine is asked by the caller.
"""

from __future__ import annotations

import re

PROCESSING = "llamacpp:requests_processing"
DEFERRED = "llamacpp:requests_deferred"
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {name: value} (labels dropped; comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        try:
            out[m.group(1)] = float(m.group(2))
        except ValueError:
            continue
    return out


def busy_ratio(metrics: dict[str, float], slots: int) -> float:
    """Slots processing / slots, in [0, 1], two decimals (OneFlow averages it over the role)."""
    if slots <= 0:
        return 0.0
    return round(min(1.0, max(0.0, metrics.get(PROCESSING, 0.0) / slots)), 2)


def in_flight(metrics: dict[str, float]) -> int:
    """Requests the engine is running or holding: what a drain waits for."""
    return int(metrics.get(PROCESSING, 0.0) + metrics.get(DEFERRED, 0.0))


def format_ratio(value: float) -> str:
    """Always a dot, never a locale comma: OneGate cannot carry a ',' in a value."""
    return f"{value:.2f}"
