"""The cluster agent (``slm-cluster.service``): one loop, by role.

* backend: publish itself through OneGate only once its ``/health`` (through nginx, as the LB
  checks it) is 200, then refresh ``SLM_LB_BUSY`` from the engine's metrics every tick when it
  changed; never while draining.
* lb with ``backends: onegate``: read ``service show --extended``, save the RUNNING nodes that
  published themselves, and run the normal apply only when that set changed (HAProxy is then
  checked with ``haproxy -c`` and reloaded without cutting streams).

Every dependency is injected; ``tick`` does one round so tests drive it without sleeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from appliance.answers.hostport import join_hostport, split_hostport
from appliance.cluster.busy import busy_ratio, format_ratio, parse_metrics
from appliance.cluster.discovery import save_discovered
from appliance.cluster.drain import is_draining
from appliance.cluster.onegate import OneGate
from appliance.cluster.records import BUSY, discover, record
from appliance.host.paths import Layout


@dataclass
class BackendSelf:
    """How this backend is reached and probed."""

    https: str
    """The answers' ``listen.https`` (an unspecified host is replaced by the VM's NIC IP)."""
    slots: int
    cert_pem: bytes
    health: Callable[[], bool]
    metrics: Callable[[], str | None]


@dataclass
class Agent:
    layout: Layout
    gate: OneGate
    published: bool = False
    last_busy: str | None = None
    pending: bool = False
    """A changed set whose apply has not succeeded yet (retried on the next tick)."""
    log: Callable[[str], None] = lambda s: None
    _address: str | None = field(default=None, repr=False)

    def address(self, https: str) -> str:
        """``listen.https``, with 0.0.0.0/:: replaced by the first NIC IP OneGate knows."""
        if self._address is None:
            host, port = split_hostport(https)
            if host in ("0.0.0.0", "::"):
                nics = (self.gate.vm_show().get("TEMPLATE") or {}).get("NIC") or []
                nics = nics if isinstance(nics, list) else [nics]
                ips = [n.get("IP") for n in nics if isinstance(n, dict) and n.get("IP")]
                if not ips:
                    raise RuntimeError("OneGate shows no NIC IP for this VM")
                host = str(ips[0])
            self._address = join_hostport(host, port)
        return self._address

    def tick_backend(self, me: BackendSelf) -> None:
        if is_draining(self.layout) or not me.health():
            return
        text = me.metrics()
        busy = format_ratio(busy_ratio(parse_metrics(text or ""), me.slots))
        attrs: dict[str, str] = {}
        if not self.published:
            attrs.update(record(self.address(me.https), me.slots, me.cert_pem))
        if busy != self.last_busy:
            attrs[BUSY] = busy
        if attrs:
            self.gate.vm_update(attrs)
            if not self.published:
                self.log(f"published {self.address(me.https)} ({me.slots} slot(s))")
            self.published, self.last_busy = True, busy

    def tick_lb(self, apply: Callable[[], object]) -> bool:
        """One discovery round; True when the set changed and the apply ran."""
        found = discover(self.gate.service_show(extended=True))
        if save_discovered(self.layout, found):
            self.pending = True
            self.log("backends: " + (", ".join(f"{d.server.name}={d.server.address}"
                                               for d in found) or "none"))
        if not self.pending:
            return False
        apply()
        self.pending = False
        return True


def http_probe(url: str, verify: object, timeout: float = 3.0) -> Callable[[], bool]:
    def probe() -> bool:
        with contextlib.suppress(httpx.HTTPError, OSError), \
                httpx.Client(verify=verify, timeout=timeout) as c:  # type: ignore[arg-type]
            return c.get(url).status_code == 200
        return False
    return probe


def text_probe(url: str, timeout: float = 3.0) -> Callable[[], str | None]:
    def probe() -> str | None:
        with contextlib.suppress(httpx.HTTPError, OSError), \
                httpx.Client(timeout=timeout) as c:
            r = c.get(url)
            return r.text if r.status_code == 200 else None
        return None
    return probe
