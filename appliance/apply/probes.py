"""Checks against the live stack: ``nginx -t``, engine readiness, the served certificate,
the key end to end, and a reload that waits for nginx's old workers.

The network side is the small :class:`Probes` interface on the Context (``HttpProbes`` on a
real stack), and every wait runs on the Context's clock and sleep, so the rollback logic is
tested in memory without waiting (tests/memory.py).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path

import httpx

from appliance.answers.hostport import join_hostport, split_hostport
from appliance.apply.causes import with_cause
from appliance.apply.runtime import Context
from appliance.errors import ApplyError
from appliance.host.paths import Layout
from appliance.host.services import NGINX, nginx_argv
from appliance.plan.build import Plan
from appliance.plan.engines import ENGINES
from appliance.plan.roles import HAPROXY_CFG
from appliance.tls import selfsigned as tls


class HttpProbes:
    """The real probes: plain HTTP(S) requests and a TLS handshake on loopback."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def status(self, url: str, headers: Mapping[str, str] | None = None) -> int:
        """The HTTP status ``url`` answers; OSError when nothing answers. HTTPS is not
        verified here: callers compare the served certificate with ``fingerprint`` first."""
        try:
            with httpx.Client(verify=False, timeout=self.timeout) as client:
                return client.get(url, headers=headers).status_code
        except httpx.HTTPError as exc:
            raise OSError(str(exc) or type(exc).__name__) from None

    def fingerprint(self, host: str, port: int) -> str:
        return served_fingerprint(host, port, self.timeout)


def nginx_test(ctx: Context) -> None:
    r = ctx.runner([*nginx_argv(ctx.site, ctx.layout), "-t", "-q"], 60)
    if not r.ok:
        raise ApplyError("nginx-test", "nginx rejected the new configuration",
                         (r.stderr or r.stdout).strip())


def haproxy_test(ctx: Context) -> None:
    cfg = str(ctx.layout.map(HAPROXY_CFG))
    r = ctx.runner([ctx.site.haproxy_bin, "-c", "-q", "-f", cfg], 60)
    if not r.ok:
        raise ApplyError("haproxy-test", "HAProxy rejected the new configuration",
                         (r.stderr or r.stdout).strip())


def check_front(plan: Plan, ctx: Context) -> None:
    """``nginx -t`` or ``haproxy -c``: the new configuration is valid before any reload."""
    if plan.front_unit == NGINX:
        nginx_test(ctx)
    else:
        haproxy_test(ctx)


def reload_front(unit: str, ctx: Context) -> None:
    """nginx: reload and wait for its old workers; HAProxy (master-worker): USR2, the old
    worker keeps its streams and new connections reach the new one."""
    if unit == NGINX:
        reload_nginx(ctx)
    else:
        ctx.services.reload(unit)


def engine_url(listen: str) -> str:
    return f"http://{join_hostport(*split_hostport(listen))}"


def wait_engine_ready(plan: Plan, ctx: Context, timeout: float) -> float:
    engine = ENGINES[plan.resolved.answers.engine]
    return wait_ready(engine_url(plan.engine_listen) + engine.readiness_path,
                      plan.engine_unit or engine.unit, plan.resolved.model_id, ctx, timeout)


def wait_ready(url: str, unit: str, what: str, ctx: Context, timeout: float) -> float:
    """Poll the engine's readiness route until 200; fail fast if the process dies."""
    start = ctx.clock()
    while True:
        with contextlib.suppress(OSError):
            if ctx.probes.status(url) == 200:
                return ctx.clock() - start
        if not ctx.services.is_active(unit):
            tail = ctx.services.log_tail(unit, 20)
            raise ApplyError("engine-ready", with_cause(
                f"{unit} stopped while loading {what}", tail), tail)
        if ctx.clock() - start > timeout:
            tail = ctx.services.log_tail(unit, 20)
            raise ApplyError("engine-ready", with_cause(
                f"{unit} not ready after {timeout:.0f} s", tail), tail)
        ctx.sleep(0.1)


def probe_address(listen: str) -> tuple[str, int]:
    host, port = split_hostport(listen)
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def served_fingerprint(host: str, port: int, timeout: float = 2.0) -> str:
    sctx = ssl.create_default_context()
    sctx.check_hostname = False
    sctx.verify_mode = ssl.CERT_NONE  # we compare the exact certificate instead
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            sctx.wrap_socket(raw, server_hostname=None) as s:
        der = s.getpeercert(binary_form=True)
    return tls.fingerprint(der or b"")


def verify_nginx(plan: Plan, ctx: Context, timeout: float = 10.0) -> None:
    """nginx serves our certificate on the https port, /health says ready and the key opens
    /v1/models: the new configuration is live end to end."""
    host, port = probe_address(plan.resolved.answers.listen.https)
    key = next(f for f in plan.files if f.path == ctx.layout.api_key_file)
    auth = {"Authorization": "Bearer " + (key.content or b"").decode().strip()}
    assert plan.served is not None
    want = tls.fingerprint(plan.served.leaf_pem)
    start, last = ctx.clock(), "no answer"
    while ctx.clock() - start < timeout:
        try:
            if ctx.probes.fingerprint(host, port) == want:
                base = f"https://{join_hostport(host, port)}"
                status = ctx.probes.status(f"{base}/health")
                models = ctx.probes.status(f"{base}/v1/models", auth)
                if status == 200 and models == 200:
                    return
                if plan.engine_unit is None and status in (200, 503) and models in (200, 503):
                    return  # an LB: the key opens it; backends may still be coming up
                last = f"/health answered {status}, /v1/models {models}"
            else:
                last = "an old certificate is still served"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        ctx.sleep(0.1)
    raise ApplyError("verify", f"nginx on {host}:{port} is not serving the new configuration "
                     f"({last})", ctx.services.log_tail(plan.front_unit, 10) + _nginx_errors(ctx))


def nginx_workers(layout: Layout) -> set[str]:
    try:
        master = int(layout.map(layout.nginx_pid).read_text().strip())
        return set(Path(f"/proc/{master}/task/{master}/children").read_text().split())
    except (OSError, ValueError):
        return set()


def drain_workers(ctx: Context, workers: set[str], timeout: float) -> None:
    """Wait until nginx's pre-reload workers exit: they carry the streams still running on the
    old engine instance, and exit when those finish (or ``timeout`` passes)."""
    start = ctx.clock()
    while workers & nginx_workers(ctx.layout) and ctx.clock() - start < timeout:
        ctx.sleep(0.05)


def reload_nginx(ctx: Context, wait: float = 5.0) -> None:
    """Reload and wait for the old workers to finish: reload is asynchronous, and until they
    exit they still answer new connections with the old key and certificate. Workers busy with
    a long stream may outlive ``wait``; they no longer accept connections by then."""
    old = nginx_workers(ctx.layout)
    ctx.services.reload(NGINX)
    start = ctx.clock()
    while old & nginx_workers(ctx.layout) and ctx.clock() - start < wait:
        ctx.sleep(0.02)


def _nginx_errors(ctx: Context) -> str:
    try:
        text = ctx.layout.map(ctx.layout.nginx_log_dir + "/error.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines()[-10:] if "emerg" in line or "crit" in line)
