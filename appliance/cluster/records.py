"""What a backend publishes through OneGate, and how the LB reads it back.

A backend appears only after its ``/health`` is 200 and disappears when it drains. Values are
plain strings OneGate can carry (no ``, [ ] \\ "`` or newlines): the served certificate goes as
one line of unpadded base64, so the LB can pin exactly the certificates its backends serve.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from appliance.plan.render.haproxy import Server

ADDRESS = "SLM_LB_BACKEND"
"""``host:port`` of the backend's https listener."""
SLOTS = "SLM_LB_SLOTS"
CERT = "SLM_LB_CERT"
BUSY = "SLM_LB_BUSY"
"""Slots processing / slots, for OneFlow's ``elasticity_policies``."""
PUBLISHED = (ADDRESS, SLOTS, CERT, BUSY)
RUNNING = ("3", "3")
"""STATE ACTIVE, LCM_STATE RUNNING: the only VMs OneFlow itself counts."""


@dataclass(frozen=True)
class Discovered:
    server: Server
    cert_pem: bytes


def record(address: str, slots: int, cert_pem: bytes) -> dict[str, str]:
    cert = base64.b64encode(cert_pem).decode().rstrip("=")
    return {ADDRESS: address, SLOTS: str(slots), CERT: cert}


def decode_cert(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def discover(service: dict[str, Any]) -> list[Discovered]:
    """Every RUNNING node of the service (``service show --extended``) that published itself.

    Nodes still booting, loading, draining or gone have no published address (or are not
    RUNNING) and are left out; a malformed record is skipped, never fatal."""
    out: dict[str, Discovered] = {}
    for role in _as_list(service.get("roles")):
        for node in _as_list(role.get("nodes")):
            vm = ((node or {}).get("vm_info") or {}).get("VM") or {}
            ut = vm.get("USER_TEMPLATE") or {}
            if (str(vm.get("STATE")), str(vm.get("LCM_STATE"))) != RUNNING:
                continue
            address, slots, cert = ut.get(ADDRESS), ut.get(SLOTS), ut.get(CERT)
            if not (isinstance(address, str) and isinstance(slots, str)
                    and isinstance(cert, str)):
                continue
            try:
                pem = decode_cert(cert)
                n = int(slots)
            except (ValueError, binascii.Error):
                continue
            if not pem.startswith(b"-----BEGIN CERTIFICATE-----") or n < 1:
                continue
            name = f"vm{vm.get('ID')}"
            out[name] = Discovered(Server(name, address, n), pem)
    return [out[k] for k in sorted(out)]
