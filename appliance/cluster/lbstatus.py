"""What the LB sees: each backend's state, its requests running and waiting, from HAProxy's
stats socket (``show stat``), plus a look at ``/health`` of the down ones to tell "draining".
"""

from __future__ import annotations

import contextlib
import csv
import io
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx

from appliance.host.paths import Layout
from appliance.host.services import HAPROXY, ServiceManager
from appliance.plan.render.cluster import AGENT_UNIT
from appliance.plan.render.haproxy import BACKEND
from appliance.plan.roles import HAPROXY_CA, HAPROXY_SOCK

STATES = {"UP": "up", "DOWN": "down", "MAINT": "maint", "DRAIN": "draining", "NOLB": "draining"}


def show_stat(sock_path: Path, timeout: float = 2.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(b"show stat\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def parse_stat(text: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """-> (servers of our backend, backend totals). ``status`` is e.g. "UP", "DOWN 1/2"."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("# "))))
    servers, totals = [], {"queued": 0, "current": 0, "up": 0}
    for row in rows:
        if row.get("pxname") != BACKEND:
            continue
        if row.get("svname") == "BACKEND":
            totals["queued"] = int(row.get("qcur") or 0)
            totals["current"] = int(row.get("scur") or 0)
            continue
        status = (row.get("status") or "").split(" ")[0]
        state = STATES.get(status, status.lower() or "unknown")
        servers.append({"name": row.get("svname"), "address": row.get("addr"), "state": state,
                        "current": int(row.get("scur") or 0),
                        "queued": int(row.get("qcur") or 0),
                        "slots": int(row.get("slim") or 0),
                        "served": int(row.get("stot") or 0),
                        "check": row.get("check_status") or None})
        totals["up"] += state == "up"
    return servers, totals


def _draining(address: str, ca_file: Path, timeout: float) -> bool:
    sctx = ssl.create_default_context(cafile=str(ca_file))
    sctx.check_hostname = False  # pinned: the CA file holds exactly the backends' certificates
    with contextlib.suppress(httpx.HTTPError, OSError, ValueError), \
            httpx.Client(verify=sctx, timeout=timeout) as c:
        r = c.get(f"https://{address}/health")
        return r.status_code == 503 and "draining" in r.text
    return False


def lb_status(sock_path: Path, ca_file: Path, timeout: float = 2.0) -> dict[str, Any]:
    try:
        servers, totals = parse_stat(show_stat(sock_path, timeout))
    except OSError as exc:
        return {"backends": [], "error": f"HAProxy stats socket: {exc.strerror or exc}"}
    for s in servers:
        if s["state"] == "down" and s["address"] and _draining(s["address"], ca_file, timeout):
            s["state"] = "draining"
    return {"backends": servers, **totals}


def role_status(layout: Layout, services: ServiceManager, state: dict[str, Any],
                running: dict[str, bool]) -> dict[str, Any]:
    """The role's part of ``wizard status``: on an LB, HAProxy and every backend it knows."""
    role = state.get("role")
    if role != "lb":
        return {"role": role, "services": running | {AGENT_UNIT: services.is_active(AGENT_UNIT)}}
    return {"role": role, "model": None, "engine": None,
            "services": {u: services.is_active(u) for u in (HAPROXY, AGENT_UNIT)},
            "lb": lb_status(layout.map(HAPROXY_SOCK), layout.map(HAPROXY_CA))}
