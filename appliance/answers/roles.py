"""The cluster roles in the answers: ``role`` and, only with ``role: lb``, its ``lb`` section.

A separate block of the one gate (``schema.parse`` calls :func:`check_role`): ``backend`` is a
standalone appliance that also publishes itself through OneGate; ``lb`` runs HAProxy in front
of backends, either discovered (``onegate``) or listed as ``host:port``. A static list needs
the CA its backends' certificates chain to: no hop goes unverified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from appliance.answers import checks
from appliance.answers.hostport import split_hostport
from appliance.errors import FieldError

ROLES = ("standalone", "backend", "lb")
BALANCES = ("leastconn", "roundrobin")
ONEGATE = "onegate"
HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


@dataclass(frozen=True)
class LBAnswers:
    backends: str | list[str] = ONEGATE
    """``onegate`` (what the service's backends publish) or a list of ``host:port``."""
    backend_ca: str | None = None
    """PEM bundle (a path under the root, or the PEM itself) the LB trusts for backends."""
    balance: str = "leastconn"


def backend_address(value: str) -> bool:
    """``IP:PORT``, ``[IPv6]:PORT`` or ``name:PORT`` of a backend's https listener."""
    try:
        split_hostport(value)
        return True
    except ValueError:
        host, _, port = value.rpartition(":")
        return bool(HOST_RE.fullmatch(host)) and port.isdigit() and 0 < int(port) < 65536


def check_role(errors: list[FieldError], data: Mapping[str, Any], base_role: str,
               base_lb: LBAnswers | None) -> tuple[str, LBAnswers | None]:
    role = data.get("role", base_role)
    if role not in ROLES:
        errors.append(FieldError("role", f"unknown role {role!r}",
                                 f"use one of: {', '.join(ROLES)}"))
        return base_role, base_lb
    raw = data.get("lb")
    if role != "lb":
        if raw is not None:
            errors.append(FieldError("lb", f"only with role: lb (role is {role})",
                                     "remove the lb section or set role: lb"))
        return str(role), None
    current = base_lb if base_role == "lb" and base_lb is not None else LBAnswers()
    lb = checks.merge_section(errors, "lb", raw, current)
    return "lb", _check_lb(errors, lb)


def _check_lb(errors: list[FieldError], lb: LBAnswers) -> LBAnswers:
    backends: str | list[str] = lb.backends
    if isinstance(backends, str) and backends != ONEGATE:  # ONEAPP_*: "h1:443,h2:443"
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    if isinstance(backends, list):
        backends = [str(b) for b in backends]
        if not backends:
            errors.append(FieldError("lb.backends", "the list is empty",
                                     "list each backend as host:port, or use onegate"))
        for n, item in enumerate(backends):
            if not backend_address(item):
                errors.append(FieldError(f"lb.backends[{n}]", f"{item!r} is not HOST:PORT",
                                         "write the IP (or DNS name) and port of a backend's "
                                         "https listener, e.g. 10.0.1.5:443"))
        if len(set(backends)) != len(backends):
            errors.append(FieldError("lb.backends", "a backend is listed twice",
                                     "list each backend once"))
    elif backends != ONEGATE:
        errors.append(FieldError("lb.backends", f"must be onegate or a list, got {backends!r}",
                                 "use onegate or a list of host:port"))
    ca = checks.text(errors, "lb.backend_ca", lb.backend_ca)
    if isinstance(backends, list) and ca is None:
        errors.append(FieldError("lb.backend_ca", "a static backend list needs the CA the "
                                 "backends' certificates chain to (no hop goes unverified)",
                                 "set lb.backend_ca to a PEM file with the backends' "
                                 "certificates (their /etc/slm-appliance/tls/selfsigned.crt)"))
    if lb.balance not in BALANCES:
        errors.append(FieldError("lb.balance", f"unknown balance {lb.balance!r}",
                                 f"use one of: {', '.join(BALANCES)}"))
    return replace(lb, backends=backends, backend_ca=ca, balance=str(lb.balance))
