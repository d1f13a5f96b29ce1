"""What an apply runs against: the injected world (``Context``) and its progress ``Event``s.

:func:`make_context` is the one place a real Context is put together (CLI and wizard alike);
tests build one by hand with in-memory services, probes and clock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from appliance.host import facts as facts_mod
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.runner import Runner, run
from appliance.host.services import ServiceManager, manager_for
from appliance.host.site import Site

EventState = Literal["running", "done", "failed", "skipped"]


class Probes(Protocol):
    """What the apply asks the network (``apply.probes.HttpProbes`` on a real stack)."""

    def status(self, url: str, headers: Mapping[str, str] | None = None) -> int: ...
    def fingerprint(self, host: str, port: int) -> str: ...


@dataclass(frozen=True)
class Event:
    """Progress for the CLI and the TUI: step, state, detail."""

    step: str
    state: EventState
    detail: str = ""


Emit = Callable[[Event], None]


def _http_probes() -> Probes:
    from appliance.apply.probes import HttpProbes  # probes needs Context: import when used

    return HttpProbes()


@dataclass
class Context:
    layout: Layout
    site: Site
    facts: Facts
    services: ServiceManager
    runner: Runner = run
    emit: Emit = lambda e: None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    probes: Probes = field(default_factory=_http_probes)


def make_context(layout: Layout, site: Site, emit: Emit = lambda e: None,
                 facts: Facts | None = None) -> Context:
    """The real world: this machine's facts, its service manager, HTTP probes, real time."""
    return Context(layout=layout, site=site, facts=facts or facts_mod.detect(),
                   services=manager_for(site, layout), emit=emit)
