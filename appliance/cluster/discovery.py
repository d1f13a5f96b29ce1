"""The LB's view of its backends: static answers or what OneGate discovery last saved.

Discovery saves the backend set in ``/var/lib/slm-appliance/backends.json``; the plan renders
HAProxy from it, so a changed set is a changed file (``haproxy -c``, reload) and an unchanged
set is a no-op apply. Certificates come from what the backends published: the LB trusts
exactly those (plus ``lb.backend_ca``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from appliance.cluster.records import Discovered
from appliance.host.files import atomic_write, read_bytes
from appliance.host.paths import LIB, Layout
from appliance.plan.render.haproxy import Server, server_name

BACKENDS_FILE = f"{LIB}/backends.json"


@dataclass(frozen=True)
class BackendSet:
    servers: tuple[Server, ...]
    ca_pem: bytes


def load_discovered(layout: Layout) -> list[Discovered]:
    raw = read_bytes(layout.map(BACKENDS_FILE))
    if not raw:
        return []
    try:
        items = json.loads(raw)
        return [Discovered(Server(i["name"], i["address"], int(i["slots"])),
                           base64.b64decode(i["cert"])) for i in items]
    except (ValueError, KeyError, TypeError):
        return []  # a damaged file is rewritten by the next discovery


def save_discovered(layout: Layout, found: list[Discovered]) -> bool:
    """Write the set; True when it changed (only then is an apply worth running)."""
    data = json.dumps([{"name": d.server.name, "address": d.server.address,
                        "slots": d.server.slots, "cert": base64.b64encode(d.cert_pem).decode()}
                       for d in found], indent=1).encode()
    if read_bytes(layout.map(BACKENDS_FILE)) == data:
        return False
    atomic_write(layout.map(BACKENDS_FILE), data, 0o644)
    return True


def backend_set(backends: str | list[str], slots: int, ca_pem: bytes,
                layout: Layout) -> BackendSet:
    """Static ``host:port`` list (each with ``slots``) or the discovered set."""
    if isinstance(backends, str):  # "onegate"
        found = load_discovered(layout)
        pems = b"".join(d.cert_pem if d.cert_pem.endswith(b"\n") else d.cert_pem + b"\n"
                        for d in found)
        return BackendSet(tuple(d.server for d in found), ca_pem + pems)
    return BackendSet(tuple(Server(server_name(a), a, slots) for a in backends), ca_pem)
