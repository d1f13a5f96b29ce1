"""What an apply runs against: the injected world (``Context``) and its progress ``Event``s."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.runner import Runner, run
from appliance.host.services import ServiceManager
from appliance.host.site import Site


@dataclass(frozen=True)
class Event:
    """Progress for the CLI and the TUI: step, state (running/done/failed/skipped), detail."""

    step: str
    state: str
    detail: str = ""


Emit = Callable[[Event], None]


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
