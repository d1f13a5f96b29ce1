"""How the engine takes a new configuration, decided from plain numbers (pure).

* ``KEEP``: its inputs are unchanged and it runs: untouched.
* ``START``: it is not running now: nothing to keep serving, start it.
* ``SWITCH``: start the new engine beside the old one on the spare loopback port, wait until it
  is ready, point nginx at it by a reload (streams in flight stay on the old one), stop the old
  one: no request sees an error.
* ``RESTART``: restart in place when both engines do not fit in the available RAM (or the
  engine cannot run twice): requests get a JSON 503 with ``Retry-After`` for ``gap_s``.

A second copy of the *same* model file costs no second copy of its weights: llama.cpp maps the
file, and both processes share the page cache. So a threads or context change needs only the
KV cache and compute buffers beside the old engine; a new model needs all of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

HEADROOM_FRACTION = 0.05
"""RAM kept free beyond both engines (page cache, nginx, the wizard), as a share of the total."""
HEADROOM_MIN = 128 << 20
COLD_READ_BYTES_PER_S = 150 << 20
"""Conservative model load rate (disk read + mmap) when no load was ever measured."""


class Strategy(StrEnum):
    KEEP = "keep"
    START = "start"
    SWITCH = "switch"
    RESTART = "restart"


@dataclass(frozen=True)
class EngineStep:
    """What happens to the engine in one apply, as Review announces it."""

    strategy: Strategy
    gap_s: int = 0
    """Announced upper bound of seconds of 503 + Retry-After (RESTART only; else 0)."""
    reason: str = ""
    """Why a restart in place rather than a switch (RESTART only)."""
    previous: str | None = None
    """The unit serving now, stopped after nginx switched away from it (SWITCH only)."""

    @property
    def downtime(self) -> bool:
        return self.strategy is Strategy.RESTART


@dataclass(frozen=True)
class EngineFacts:
    """Everything the choice depends on, gathered by the apply (services, facts, state)."""

    changed: bool
    """The engine's files change (unit, model, env)."""
    running: bool
    """An engine serves now (else there is nothing to keep serving)."""
    twin_blocker: str
    """Why a second instance cannot start beside the serving one ("" when it can)."""
    need_bytes: int
    """The new engine's memory estimate (weights + KV + overhead)."""
    shared_bytes: int
    """Of which already resident and shared with the old engine (the same model file)."""
    available_bytes: int
    """MemAvailable now; 0 when unknown (then a switch is not risked)."""
    total_bytes: int
    model_bytes: int
    load_s: float | None
    """Slowest recent start-to-ready time of this model here, None if never measured."""


LOADS_KEPT = 4


def load_times(value: object) -> list[float]:
    """The recorded start-to-ready times of one model (a list; one number in older states)."""
    items = value if isinstance(value, list) else [value]
    return [float(v) for v in items if isinstance(v, int | float)]


def remember_load(loads: dict[str, object], model: str, took: float) -> dict[str, object]:
    """``loads`` with ``took`` added for ``model``, keeping the last few: the gap announced for
    a restart is derived from the slowest of them (load time varies with threads and with
    what else runs on the CPUs)."""
    return loads | {model: [*load_times(loads.get(model))[-(LOADS_KEPT - 1):], round(took, 2)]}


def expected_gap(load_s: float | None, model_bytes: int) -> int:
    """Seconds of 503 to announce for a restart in place: stop + start + load, as an upper
    bound (twice the last measured load, plus a second), rounded up."""
    base = load_s if load_s is not None else 1.0 + model_bytes / COLD_READ_BYTES_PER_S
    return max(1, math.ceil(2 * base + 1))


def headroom(total_bytes: int) -> int:
    return max(HEADROOM_MIN, int(total_bytes * HEADROOM_FRACTION))


def choose(f: EngineFacts) -> EngineStep:
    """Pick the strategy; the reason names what would have to change for a switch."""
    if not f.running:
        return EngineStep(Strategy.START)
    if not f.changed:
        return EngineStep(Strategy.KEEP)
    gap = expected_gap(f.load_s, f.model_bytes)
    if f.twin_blocker:
        return EngineStep(Strategy.RESTART, gap, f.twin_blocker)
    extra = max(0, f.need_bytes - f.shared_bytes)
    if not f.available_bytes or extra + headroom(f.total_bytes) > f.available_bytes:
        have = f"{f.available_bytes >> 20} MiB" if f.available_bytes else "an unknown amount"
        return EngineStep(Strategy.RESTART, gap, f"both engines need ~{extra >> 20} MiB more "
                          f"RAM beside the old one; {have} is available")
    return EngineStep(Strategy.SWITCH)
