"""The cluster roles on top of the standalone plan.

* ``backend``: the standalone appliance plus the cluster agent (publish through OneGate once
  ready, busy ratio) and, under systemd, the drain unit that runs at shutdown.
* ``lb``: no engine, no model, no nginx: HAProxy terminates TLS with the same certificate
  (self-signed or the ACME lineage), checks the same API key and forwards to the backends over
  verified HTTPS; with ``backends: onegate`` the agent keeps the backend set current.
* every role stops the units of the other roles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from appliance.cluster.discovery import backend_set
from appliance.errors import AnswersError, FieldError
from appliance.host.files import FileSpec, read_bytes
from appliance.host.paths import Layout
from appliance.host.services import HAPROXY, NGINX
from appliance.host.site import Site
from appliance.plan.build import Plan
from appliance.plan.engines import ENGINE_UNITS
from appliance.plan.render.cluster import (
    AGENT_UNIT,
    DRAIN_UNIT,
    render_agent_unit,
    render_drain_unit,
)
from appliance.plan.render.haproxy import (
    HAProxyInputs,
    render_acme_lua,
    render_haproxy_cfg,
    render_haproxy_unit,
    render_key_list,
)
from appliance.plan.secrets import Secrets
from appliance.plan.state import DRAIN_MARKER
from appliance.plan.strategy import EngineStep, Strategy
from appliance.tls import selfsigned as tls

HAPROXY_DIR = "/etc/haproxy"
HAPROXY_CFG = f"{HAPROXY_DIR}/haproxy.cfg"
HAPROXY_PEM = f"{HAPROXY_DIR}/slm-tls.pem"
HAPROXY_KEYS = f"{HAPROXY_DIR}/slm-api-key.lst"
HAPROXY_CA = f"{HAPROXY_DIR}/slm-backend-ca.pem"
HAPROXY_LUA = f"{HAPROXY_DIR}/slm-acme.lua"
HAPROXY_SOCK = "/run/slm-appliance/haproxy.sock"
HAPROXY_PID = "/run/slm-appliance/haproxy.pid"
ROLE_UNITS = (HAPROXY, AGENT_UNIT, DRAIN_UNIT)


def with_role(plan: Plan, site: Site, layout: Layout, sec: Secrets) -> Plan:
    a = plan.resolved.answers
    if a.role == "lb":
        return _lb(plan, site, layout, sec)
    files, daemons, timers = list(plan.files), [], list(plan.timers)
    files.append(FileSpec(DRAIN_MARKER, None))  # an apply after a drain serves again
    if a.role == "backend":
        unit = f"{layout.systemd_dir}/{AGENT_UNIT}"
        files.append(FileSpec(unit, render_agent_unit(site, layout, "backend").encode(), 0o644,
                              affects=frozenset({"units", AGENT_UNIT})))
        files.append(FileSpec(f"{layout.systemd_dir}/{DRAIN_UNIT}", render_drain_unit(
            site, layout, ENGINE_UNITS).encode(), 0o644, affects=frozenset({"units"})))
        daemons.append(AGENT_UNIT)
        if site.service_manager == "systemd":
            timers.append(DRAIN_UNIT)  # ExecStop only: "active" means armed for shutdown
    others = [*plan.other_units, *(u for u in ROLE_UNITS if u not in daemons + timers)]
    return replace(plan, files=files, other_units=others, daemons=daemons, timers=timers,
                   state=plan.state | {"role": a.role})


def _backend_ca(value: str | None, layout: Layout) -> bytes:
    if value is None:
        return b""
    if value.lstrip().startswith("-----BEGIN"):
        pem = value.encode()
    else:
        pem = read_bytes(layout.map(value)) or b""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise AnswersError([FieldError("lb.backend_ca", f"{value[:60]!r} is not a readable PEM "
                                       "certificate bundle", "give the path of the backends' "
                                       "CA (or their self-signed certificates) in PEM")])
    return pem if pem.endswith(b"\n") else pem + b"\n"


def _secrets(sec: Secrets) -> list[str]:
    """The default key and the named keys not expired today. The backends check the same
    keys again (expiry to the day, per-key limits): the LB only keeps strangers out."""
    today = dt.date.today()
    return [sec.api_key, *(k.secret for k in sec.keys.keys if not k.expired(today))]


def _lb(plan: Plan, site: Site, layout: Layout, sec: Secrets) -> Plan:
    a = plan.resolved.answers
    m = layout.map
    lb = a.lb
    assert lb is not None
    backends = backend_set(lb.backends, a.parallel, _backend_ca(lb.backend_ca, layout), layout)
    served = sec.served
    if served.mode == "self-signed":
        pem = sec.cert.cert_pem + sec.cert.key_pem
    else:
        pem = (read_bytes(m(served.cert_path)) or b"") + (read_bytes(m(served.key_path)) or b"")
    cfg = render_haproxy_cfg(HAProxyInputs(
        https=a.listen.https, http=a.listen.http, pem=str(m(HAPROXY_PEM)),
        key_list=str(m(HAPROXY_KEYS)), backend_ca=str(m(HAPROXY_CA)),
        servers=backends.servers, balance=lb.balance, stats_socket=str(m(HAPROXY_SOCK)),
        acme_lua=str(m(HAPROXY_LUA)), user=None if site.service_manager == "sandbox"
        else "haproxy", cert_sha256=tls.fingerprint(served.leaf_pem)))
    front = frozenset({"haproxy"})
    # everything but nginx's and the engine's files (left on disk, their units stopped)
    files = [f for f in plan.files if "engine" not in f.affects
             and f.path not in (layout.nginx_conf, layout.nginx_key_map)]
    files += [
        FileSpec(HAPROXY_KEYS, render_key_list(_secrets(sec)).encode(), 0o600, secret=True,
                 affects=front),
        FileSpec(HAPROXY_PEM, pem, 0o600, secret=True, affects=front),
        # no backend yet: an empty CA file would stop HAProxy; the served cert stands in
        FileSpec(HAPROXY_CA, backends.ca_pem or sec.cert.cert_pem, 0o644, affects=front),
        FileSpec(HAPROXY_LUA, render_acme_lua(str(m(layout.webroot))).encode(), 0o644,
                 affects=front),
        FileSpec(HAPROXY_CFG, cfg.encode(), 0o644, affects=front),
        FileSpec(f"{layout.systemd_dir}/{HAPROXY}", render_haproxy_unit(
            site.haproxy_bin, str(m(HAPROXY_CFG)), str(m(HAPROXY_PID))).encode(), 0o644,
            affects=frozenset({"units"})),
    ]
    daemons = []
    if lb.backends == "onegate":
        files.append(FileSpec(f"{layout.systemd_dir}/{AGENT_UNIT}", render_agent_unit(
            site, layout, "lb").encode(), 0o644, affects=frozenset({"units", AGENT_UNIT})))
        daemons.append(AGENT_UNIT)
    others = [*ENGINE_UNITS, NGINX, DRAIN_UNIT,
              *([] if daemons else [AGENT_UNIT])]
    state = {k: v for k, v in plan.state.items() if k not in ("sha256_stamps",)}
    return replace(plan, files=files, engine_unit=None, engine_step=EngineStep(Strategy.KEEP),
                   front_unit=HAPROXY, other_units=others,
                   daemons=daemons, state=state | {"role": "lb", "engine_unit": None,
                                                   "backends": [s.address for s in
                                                                backends.servers]})
