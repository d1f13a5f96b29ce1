"""Build the plan: every file the appliance owns, rendered from resolved answers + secrets.

The secrets come in already gathered (``plan.secrets``); rendering itself is pure.
"""

from __future__ import annotations

import ipaddress
import resource
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.answers.context import RULE, context_view
from appliance.answers.hostport import split_hostport
from appliance.host.facts import Facts
from appliance.host.files import FileSpec
from appliance.host.paths import Layout
from appliance.host.services import NGINX
from appliance.host.site import Site
from appliance.plan.engines import ENGINE_UNITS, ENGINES, LocalAI
from appliance.plan.render import MANAGED_BY
from appliance.plan.render.guard import GuardLimits, render_guard
from appliance.plan.render.keys import (
    TOKENS_FILTER,
    USAGE_JS,
    render_key_limits,
    render_key_names,
    render_key_policy,
)
from appliance.plan.render.model_gate import GATE_JS_FILE, gate_import, gate_js
from appliance.plan.render.nginx import NginxInputs, render_nginx_conf
from appliance.plan.render.nginx_limits import connection_budget
from appliance.plan.render.report import ReportInputs, render_banner, render_report
from appliance.plan.render.units import (
    RENEW_SERVICE,
    RENEW_TIMER,
    render_renew_service,
    render_renew_timer,
)
from appliance.plan.resolve import Resolved, stamp_key
from appliance.plan.secrets import Secrets, Served
from appliance.plan.state import DONE_MARKER, DRAIN_MARKER
from appliance.plan.strategy import EngineStep, Strategy
from appliance.tls import selfsigned as tls
from appliance.tls.attempts import STATUS_FILE, load_status


@dataclass
class Plan:
    resolved: Resolved
    files: list[FileSpec]
    engine_unit: str | None
    """None on the lb role: no engine runs there."""
    other_units: list[str]
    dirs: list[tuple[str, int]]
    state: dict[str, Any] = field(default_factory=dict)
    """What state.json records after a successful apply."""
    served: Served | None = None
    timers: list[str] = field(default_factory=list)
    """Timer units to keep enabled (systemd only; the sandbox has no timers)."""
    engine_listen: str = ""
    """Where the planned engine instance listens (its slot's loopback address)."""
    engine_step: EngineStep = field(default_factory=lambda: EngineStep(Strategy.KEEP))
    """How the engine takes this plan (set by the apply, which sees the services)."""
    front_unit: str = NGINX
    """What terminates TLS and checks the key: nginx, or HAProxy on the lb role."""
    daemons: list[str] = field(default_factory=list)
    """Long-running helpers (the cluster agent): started if down, restarted when units change."""


def endpoint(r: Resolved, facts: Facts, served_mode: str = "self-signed") -> str:
    """The address clients are told: the domain only once its certificate is the one served
    (a pending or failed Let's Encrypt order keeps the VM's own address, which the self-signed
    certificate names)."""
    host, port = split_hostport(r.answers.listen.https)
    ip = ipaddress.ip_address(host)
    if r.answers.tls.domain and served_mode == "letsencrypt":
        name = r.answers.tls.domain
    elif ip.is_unspecified:
        public = [a for a in facts.addresses if not ipaddress.ip_address(a).is_loopback
                  and ipaddress.ip_address(a).version == 4]
        name = public[0] if public else "127.0.0.1"
    else:
        name = f"[{host}]" if ip.version == 6 else host
    return f"https://{name}{'' if port == 443 else f':{port}'}/v1"


def build_plan(r: Resolved, facts: Facts, site: Site, layout: Layout, sec: Secrets,
               slot: str = "a") -> Plan:
    """Every file for the engine instance in ``slot`` (see ``engines.Engine.slots``)."""
    a = r.answers
    engine = ENGINES[a.engine]
    engine_listen = engine.slot_listen(a.listen.engine, slot)
    m = layout.map
    workers, nofile = connection_budget(facts.mem_total, _nofile_cap(site))
    js = site.nginx_js_module if Path(site.nginx_js_module).is_file() else None
    nginx = NginxInputs(
        https=a.listen.https, http=a.listen.http, engine=engine_listen,
        readiness_path=engine.readiness_path,
        cert=str(m(sec.served.cert_path)), key=str(m(sec.served.key_path)),
        cert_sha256=tls.fingerprint(sec.served.leaf_pem),
        key_map=str(m(layout.nginx_key_map)), key_policy=str(m(layout.nginx_key_policy)),
        key_limits=str(m(layout.nginx_key_limits)), webroot=str(m(layout.webroot)),
        js_module=js, token_filter=TOKENS_FILTER if js else "",
        pid=str(m(layout.nginx_pid)), log_dir=str(m(layout.nginx_log_dir)),
        temp_dir=str(m(layout.nginx_temp_dir)), user=site.nginx_user,
        hsts=sec.served.mode != "self-signed", worker_connections=workers, nofile=nofile,
        served_model=r.model_id, gate_import=gate_import(str(m(GATE_JS_FILE))) if js else "",
        drain_marker=str(m(DRAIN_MARKER)))
    served = sec.served
    ep = endpoint(r, facts, served.mode)
    not_after = served.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    ca_file = layout.selfsigned_cert if served.mode == "self-signed" else None
    acme = load_status(layout) if a.tls.mode == "letsencrypt" else {}
    report = ReportInputs(
        endpoint=ep, api_key_file=layout.api_key_file, ca_file=ca_file,
        model_id=r.model_id, engine=a.engine, threads=r.threads,
        context_size=a.model.context_size, parallel=a.parallel, tls_mode=served.mode,
        tls_domain=a.tls.domain, tls_not_after=not_after,
        memory_estimate_mib=r.memory_estimate >> 20, warnings=tuple(r.warnings),
        acme_last_error=acme.get("last_error"), acme_next_attempt=acme.get("next_attempt"),
        acme_last_renewal=(acme.get("last_renewal") or {}).get("at"),
        named_keys=tuple(sec.keys.names()), context=tuple(context_view(a)),
        context_rule=RULE)
    nginx_files = frozenset({"nginx"})
    guard = GuardLimits(max_tokens=a.limits.max_tokens, max_choices=a.parallel)
    files = [
        FileSpec(layout.api_key_file, (sec.api_key + "\n").encode(), 0o600, secret=True),
        *_key_files(layout, sec, nginx_files, bool(js)),
        FileSpec(layout.selfsigned_key, sec.cert.key_pem, 0o600, secret=True,
                 affects=nginx_files),
        FileSpec(layout.selfsigned_cert, sec.cert.cert_pem, 0o644, affects=nginx_files),
        FileSpec(layout.nginx_conf, render_nginx_conf(nginx).encode(), 0o644,
                 affects=nginx_files),
        FileSpec(GATE_JS_FILE, gate_js(render_guard(guard)).encode() if nginx.js_module
                 else None, 0o644,
                 affects=nginx_files),
        *engine.files(r, layout, site, slot),
        FileSpec(layout.report_file, render_report(report).encode(), 0o600),
        FileSpec(layout.banner_file, render_banner(
            str(m(layout.report_file)), str(m(layout.api_key_file)), ep, r.model_id, served.mode,
            shlex.quote(site.wizard_bin), shlex.quote(str(layout.root)),
            shlex.quote(str(m(DONE_MARKER)))).encode(), 0o644),
        FileSpec(f"{layout.systemd_dir}/{RENEW_SERVICE}", render_renew_service(site).encode(),
                 0o644, affects=frozenset({"units"})),
        FileSpec(f"{layout.systemd_dir}/{RENEW_TIMER}", render_renew_timer().encode(), 0o644,
                 affects=frozenset({"units"})),
    ]
    files += _stale_localai_configs(layout, engine.name, {f.path for f in files})
    if a.tls.mode != "letsencrypt":  # stale Let's Encrypt errors and backoff go with the mode
        files.append(FileSpec(STATUS_FILE, None, 0o600))
    engine_unit = engine.slot_unit(slot)
    other = [u for u in ENGINE_UNITS if u != engine_unit]
    dirs = [(layout.webroot + "/.well-known/acme-challenge", 0o755),
            (layout.nginx_log_dir, 0o755), (layout.nginx_temp_dir, 0o700),
            (layout.models_dir, 0o755), ("/var/log/slm-appliance", 0o750),
            (layout.run_dir, 0o755)]
    if isinstance(engine, LocalAI):
        dirs += [("/var/lib/local-ai", 0o755), ("/var/lib/local-ai/backends", 0o755),
                 ("/var/lib/local-ai/backends-user", 0o755),
                 ("/var/lib/local-ai/configuration", 0o755)]
    state = {
        "answers": a.to_dict() | {"api_key": "keep" if a.api_key not in ("keep", "rotate")
                                  else a.api_key},
        "api_key_answer": a.api_key if a.api_key in ("keep", "rotate") else "explicit",
        "engine": a.engine, "engine_unit": engine_unit, "engine_slot": slot,
        "model_id": r.model_id,
        "model_path": r.model_path, "threads": r.threads, "endpoint": ep,
        "listen": {"https": a.listen.https, "engine": engine_listen},
        "tls_mode": served.mode, "tls_not_after": not_after,
        "tls_served_sha256": tls.fingerprint(served.leaf_pem),
        "sha256_stamps": ({stamp_key(layout.map(r.model_path)): r.sha256} if r.sha256 else {}),
    }
    return Plan(resolved=r, files=files, engine_unit=engine_unit, other_units=other, dirs=dirs,
                state=state, served=served,
                timers=[RENEW_TIMER] if site.service_manager == "systemd" else [],
                engine_listen=engine_listen)


def _nofile_cap(site: Site) -> int | None:
    """The sandbox's nginx inherits our hard file limit (raising it needs CAP_SYS_RESOURCE);
    systemd starts nginx with a hard limit of 524288."""
    if site.service_manager == "systemd":
        return None
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def _key_files(layout: Layout, sec: Secrets, nginx: frozenset[str],
               tokens: bool) -> list[FileSpec]:
    """The named-key store and nginx's include files (only the map holds secrets); with njs,
    the script that copies the engine's token counts into the access log."""
    js = str(layout.map(layout.nginx_usage_js)) if tokens else None
    return [
        FileSpec(layout.keys_file, sec.keys.to_json(), 0o600, secret=True),
        FileSpec(layout.nginx_key_map, render_key_names(sec.api_key, sec.keys).encode(), 0o600,
                 secret=True, affects=nginx),
        FileSpec(layout.nginx_key_policy, render_key_policy(sec.keys, js).encode(), 0o644,
                 affects=nginx),
        FileSpec(layout.nginx_usage_js, USAGE_JS.encode() if tokens else None, 0o644,
                 affects=nginx),
        FileSpec(layout.nginx_key_limits, render_key_limits(sec.keys).encode(), 0o644,
                 affects=nginx),
    ]


def _stale_localai_configs(layout: Layout, engine: str, keep: set[str]) -> list[FileSpec]:
    """LocalAI loads every *.yaml* in its models folder: drop our old ones (other models)."""
    folder = layout.map(layout.models_dir)
    out: list[FileSpec] = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if ".yaml" not in p.name and ".yml" not in p.name:
            continue
        path = f"{layout.models_dir}/{p.name}"
        if path in keep and engine == "localai":
            continue
        try:
            managed = p.read_text(errors="replace").startswith(MANAGED_BY)
        except OSError:
            managed = False
        if managed:
            out.append(FileSpec(path, None, affects=frozenset({"engine"})))
    return out
