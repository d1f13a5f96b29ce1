"""What runs now, for ``wizard status``, the banner and the TUI's first screen."""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from appliance.answers.hostport import join_hostport
from appliance.apply.probes import engine_url, probe_address
from appliance.cluster.lbstatus import role_status
from appliance.errors import SetupError
from appliance.host.paths import Layout
from appliance.host.services import NGINX, ServiceManager
from appliance.plan.engines import ENGINES
from appliance.plan.state import load_state
from appliance.tls.attempts import load_status


@dataclass(frozen=True)
class LocalClient:
    """How a program on this VM reaches its own API through nginx: loopback, the key, and the
    self-signed CA (a CA-issued certificate names the domain, not 127.0.0.1; apply has already
    checked that it is the one served)."""

    base_url: str
    verify: ssl.SSLContext | bool
    headers: dict[str, str]
    model: str
    threads: int | None


def local_verify(layout: Layout, state: dict[str, Any]) -> ssl.SSLContext | bool:
    """How a local program checks our own https port: the self-signed CA, by address. A
    CA-issued certificate names the domain, not 127.0.0.1, and apply has already checked that
    it is the one served, so it is not verified again here."""
    if state.get("tls_mode", "self-signed") != "self-signed":
        return False
    ctx = ssl.create_default_context(cafile=str(layout.map(layout.selfsigned_cert)))
    ctx.check_hostname = False  # connected by address; the chain is still checked
    return ctx


def local_client(layout: Layout) -> LocalClient:
    state = load_state(layout)
    if not state:
        raise SetupError("nothing is configured yet: apply answers first")
    host, port = probe_address(state["listen"]["https"])
    key = layout.map(layout.api_key_file).read_text().strip()
    return LocalClient(f"https://{join_hostport(host, port)}/v1", local_verify(layout, state),
                       {"Authorization": f"Bearer {key}"}, str(state["model_id"]),
                       state.get("threads"))


def engine_api(layout: Layout) -> str:
    """The engine's own OpenAI base URL on loopback, as it serves now (a switch moves it
    between two ports), for benchmarks that bypass nginx."""
    state = load_state(layout)
    if not state:
        raise SetupError("nothing is configured yet: apply answers first")
    return engine_url(state["listen"]["engine"]) + "/v1"


def tls_pending(tls: dict[str, Any], served_mode: str | None, acme: dict[str, Any]
                ) -> dict[str, Any] | None:
    """A Let's Encrypt name asked for but not served yet: the endpoint keeps the VM's address
    until it is; Status shows why and when the next attempt runs."""
    if tls.get("mode") != "letsencrypt" or served_mode == "letsencrypt":
        return None
    same = acme.get("domain") == tls.get("domain")
    return {"domain": tls.get("domain"),
            "state": "waiting" if same and acme.get("next_attempt") else "pending",
            "last_error": acme.get("last_error") if same else None,
            "next_attempt": acme.get("next_attempt") if same else None}


def status(layout: Layout, services: ServiceManager, timeout: float = 3.0) -> dict[str, Any]:
    state = load_state(layout)
    engine_unit = state.get("engine_unit", ENGINES["llama-server"].unit)
    tls = (state.get("answers") or {}).get("tls") or {}
    acme = load_status(layout) if tls.get("mode") == "letsencrypt" else {}
    out: dict[str, Any] = {
        "configured": bool(state),
        "endpoint": state.get("endpoint"),
        "api_key_file": str(layout.map(layout.api_key_file)),
        "ca_file": str(layout.map(layout.selfsigned_cert))
        if state.get("tls_mode", "self-signed") == "self-signed" else None,
        "model": state.get("model_id"),
        "engine": state.get("engine"),
        "threads": state.get("threads"),
        "context_size": (state.get("answers") or {}).get("model", {}).get("context_size"),
        "parallel": (state.get("answers") or {}).get("parallel"),
        "tls_mode": state.get("tls_mode"),
        "tls_not_after": state.get("tls_not_after"),
        "tls_domain": tls.get("domain"),
        "acme": {k: v for k, v in acme.items()
                 if k in ("last_error", "next_attempt", "last_renewal", "failures")} or None,
        "tls_pending": tls_pending(tls, state.get("tls_mode"), acme),
        "applied_at": state.get("applied_at"),
        "services": {u: services.is_active(u) for u in (engine_unit, NGINX) if u},
        "ready": False,
        "health": None,
    }
    if state.get("role", "standalone") != "standalone":
        out.update(role_status(layout, services, state, out["services"]))
    https = (state.get("listen") or {}).get("https")
    if https:
        host, port = probe_address(https)
        url = f"https://{join_hostport(host, port)}/health"
        with contextlib.suppress(httpx.HTTPError, OSError), \
                httpx.Client(verify=local_verify(layout, state), timeout=timeout) as client:
            r = client.get(url)
            out["health"] = r.status_code
            out["ready"] = r.status_code == 200
    if state.get("role") == "lb":
        # The LB is ready when HAProxy answers for itself; its /health is 503 until a backend
        # is up, and the backends (a child role in OneFlow) only start once the LB is READY.
        out["ready"] = out["health"] in (200, 503)
    return out
