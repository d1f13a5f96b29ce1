"""Drain on scale-in: stop being chosen, let the streams in flight finish, then stop.

1. a marker file makes nginx's ``/health`` answer 503 "draining", so the LB's checks take the
   backend out (and a reload or restart of the LB does not bring it back);
2. the OneGate attributes are erased, so discovery drops it too;
3. after the LB's check window, wait until the engine runs and holds no request (its metrics);
4. stop nginx, then the engine (and the cluster agent); at shutdown systemd does that itself.
   nginx first: a request the LB still sends (its checks can lag under load) is then refused,
   a connection failure that HAProxy retries on another server, instead of reaching an nginx
   whose engine is gone and answering 503.

Wired to shutdown by ``slm-drain.service`` (ExecStop with ``--leave-running``, ordered before
the engine's and nginx's stop), inside the hypervisor's 180 s ACPI window. Clock, sleep and
the engine probe are injected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from appliance.cluster.busy import in_flight
from appliance.cluster.onegate import OneGate, OneGateError
from appliance.cluster.records import PUBLISHED
from appliance.host.files import atomic_write
from appliance.host.paths import Layout
from appliance.host.services import NGINX, ServiceManager
from appliance.plan.render.haproxy import CHECK_INTER_S
from appliance.plan.state import DRAIN_MARKER

LB_NOTICE_S = CHECK_INTER_S * 2 + 1.0
"""Two failed checks (``fall 2``) one interval apart, plus a margin."""


@dataclass(frozen=True)
class DrainResult:
    waited_s: float
    left_in_flight: int
    erased: list[str]
    stopped: list[str]

    @property
    def clean(self) -> bool:
        return self.left_in_flight == 0


def mark_draining(layout: Layout) -> None:
    atomic_write(layout.map(DRAIN_MARKER), b"draining\n", 0o644)


def is_draining(layout: Layout) -> bool:
    return layout.map(DRAIN_MARKER).exists()


def drain(layout: Layout, services: ServiceManager, units: list[str],
          metrics: Callable[[], dict[str, float] | None], gate: OneGate | None,
          timeout: float, clock: Callable[[], float], sleep: Callable[[float], None],
          say: Callable[[str], None] = lambda s: None, stop: bool = True) -> DrainResult:
    """``stop=False`` is the shutdown path: systemd stops the engine and nginx itself once
    this unit's ExecStop returns (stopping them from inside the shutdown would wait on
    systemd's own queued jobs, and disabling them would keep them down after the reboot)."""
    start = clock()
    mark_draining(layout)
    say("draining: /health answers 503 to the load balancer")
    erased: list[str] = []
    if gate is not None:
        for key in PUBLISHED:
            with contextlib.suppress(OneGateError):
                if gate.vm_erase(key):
                    erased.append(key)
        say(f"OneGate: erased {', '.join(erased) or 'nothing (not published)'}")
    sleep(max(0.0, LB_NOTICE_S - (clock() - start)))
    left, quiet = 0, 0
    while clock() - start < timeout:
        m = metrics()
        left = in_flight(m) if m is not None else 0
        quiet = quiet + 1 if left == 0 else 0
        if quiet >= 2:
            break
        sleep(0.5)
    say(f"in flight: {left}" + (" (timeout reached)" if left else ""))
    stopped = []
    for unit in [NGINX, *units] if stop else []:
        if services.is_active(unit):
            services.stop(unit)
            stopped.append(unit)
    return DrainResult(clock() - start, left, erased, stopped)
