"""The one apply path: validate -> plan -> diff -> write -> check -> (re)start, else roll back.

Every way in (wizard TUI, ``wizard --apply``, ONEAPP_* context at boot) ends in
:func:`apply_answers`. Guarantees:

* nothing is written and nothing restarted when the plan matches the disk and services run;
* files are written atomically, after their old versions are journaled;
* ``nginx -t`` passes before nginx is (re)loaded; the engine restarts only when its inputs
  changed, and the apply waits until it is ready;
* on any failure every file is put back and what ran before runs again;
* an apply killed half-way leaves a journal that the next apply rolls back first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import json
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from . import letsencrypt, tls
from .answers import Answers, join_hostport, split_hostport
from .engines import ENGINES
from .errors import ApplianceError, ApplyError, LockedError, ServiceError
from .facts import Facts
from .files import FileSpec, atomic_write, current_mode, makedirs, read_bytes, remove
from .letsencrypt import Outcome
from .paths import Layout
from .plan import Plan, build_plan, gather_secrets, load_state
from .resolve import resolve
from .runner import Runner, run
from .services import NGINX, ServiceManager, nginx_argv
from .site import Site


@dataclass(frozen=True)
class Event:
    """Progress for the CLI and the TUI: step, state (running/done/failed/skipped), detail."""

    step: str
    state: str
    detail: str = ""


Emit = Callable[[Event], None]


@dataclass
class Context:
    layout: Layout
    site: Site
    facts: Facts
    services: ServiceManager
    runner: Runner = run
    emit: Emit = lambda e: None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Change:
    spec: FileSpec
    kind: str  # create, update, delete, mode
    old: bytes | None


@dataclass
class ApplyResult:
    changes: list[Change]
    actions: list[str]
    plan: Plan
    recovered: bool = False
    warnings: list[str] = field(default_factory=list)
    tls: Outcome | None = None
    """What the ACME step did (letsencrypt mode only)."""

    @property
    def noop(self) -> bool:
        return not self.changes and not self.actions


# -- planning -----------------------------------------------------------------------------

def make_plan(answers: Answers, ctx: Context, source: str = "answers") -> Plan:
    state = load_state(ctx.layout)
    r = resolve(answers, ctx.facts, ctx.site, ctx.layout, source, state.get("sha256_stamps"))
    sec = gather_secrets(r, ctx.facts, ctx.layout, state, ctx.now())
    return build_plan(r, ctx.facts, ctx.site, ctx.layout, sec)


def diff(plan: Plan, layout: Layout) -> list[Change]:
    out: list[Change] = []
    for spec in plan.files:
        path = layout.map(spec.path)
        old = read_bytes(path)
        if spec.content is None:
            if old is not None:
                out.append(Change(spec, "delete", old))
        elif old is None:
            out.append(Change(spec, "create", None))
        elif old != spec.content:
            out.append(Change(spec, "update", old))
        elif current_mode(path) != spec.mode:
            out.append(Change(spec, "mode", old))
    return out


def describe(changes: list[Change]) -> str:
    """A unified diff for review; secrets show only that they change."""
    parts: list[str] = []
    for c in changes:
        if c.spec.secret:
            parts.append(f"--- {c.spec.path}\n+++ {c.spec.path}\n(secret: {c.kind}, not shown)\n")
            continue
        if c.kind == "mode":
            parts.append(f"mode {c.spec.path} -> {c.spec.mode:o}\n")
            continue
        old = (c.old or b"").decode(errors="replace").splitlines(keepends=True)
        new = (c.spec.content or b"").decode(errors="replace").splitlines(keepends=True)
        parts.append("".join(difflib.unified_diff(
            old, new, f"{c.spec.path} (current)" if c.old is not None else "/dev/null",
            f"{c.spec.path} (new)" if c.spec.content is not None else "/dev/null")))
    return "\n".join(parts)


def actions_for(changes: list[Change], plan: Plan, services: ServiceManager) -> list[str]:
    affected = set().union(*(c.spec.affects for c in changes)) if changes else set()
    actions: list[str] = []
    if "units" in affected:
        actions.append("daemon-reload")
    for unit in plan.other_units:
        if services.is_active(unit):
            actions.append(f"stop {unit}")
    if "engine" in affected or not services.is_active(plan.engine_unit):
        actions.append(f"restart {plan.engine_unit}")
    if not services.is_active(NGINX):
        actions.append(f"start {NGINX}")
    elif "nginx" in affected:
        actions.append(f"reload {NGINX}")
    actions += [f"start {t}" for t in plan.timers if not services.is_active(t)]
    return actions


# -- journal ------------------------------------------------------------------------------

def _journal(layout: Layout) -> Path:
    return layout.map(layout.journal_dir)


def journal_begin(changes: list[Change], layout: Layout) -> None:
    jdir = _journal(layout)
    shutil.rmtree(jdir, ignore_errors=True)
    jdir.mkdir(parents=True, mode=0o700)
    entries = []
    for n, c in enumerate(changes):
        backup = None
        if c.old is not None:
            backup = f"{n:04d}"
            atomic_write(jdir / backup, c.old, 0o600)
        entries.append({"path": c.spec.path, "backup": backup,
                        "mode": current_mode(layout.map(c.spec.path))})
    atomic_write(jdir / "journal.json", json.dumps({"entries": entries}).encode(), 0o600)


def journal_restore(layout: Layout) -> bool:
    """Put back every file the journal names; True if there was a journal."""
    jdir = _journal(layout)
    try:
        entries = json.loads((jdir / "journal.json").read_text())["entries"]
    except FileNotFoundError:
        shutil.rmtree(jdir, ignore_errors=True)  # died before the journal was complete
        return False
    for e in reversed(entries):
        target = layout.map(e["path"])
        if e["backup"] is None:
            remove(target)
        else:
            atomic_write(target, (jdir / e["backup"]).read_bytes(), e["mode"] or 0o644)
    shutil.rmtree(jdir, ignore_errors=True)
    return True


def journal_clear(layout: Layout) -> None:
    shutil.rmtree(_journal(layout), ignore_errors=True)


# -- checks -------------------------------------------------------------------------------

def nginx_test(ctx: Context) -> None:
    r = ctx.runner([*nginx_argv(ctx.site, ctx.layout), "-t", "-q"], 60)
    if not r.ok:
        raise ApplyError("nginx-test", "nginx rejected the new configuration",
                         (r.stderr or r.stdout).strip())


def engine_url(listen: str) -> str:
    return f"http://{join_hostport(*split_hostport(listen))}"


def wait_engine_ready(plan: Plan, ctx: Context, timeout: float) -> float:
    engine = ENGINES[plan.resolved.answers.engine]
    return wait_ready(engine_url(plan.resolved.answers.listen.engine) + engine.readiness_path,
                      plan.engine_unit, plan.resolved.model_id, ctx, timeout)


def wait_ready(url: str, unit: str, what: str, ctx: Context, timeout: float) -> float:
    """Poll the engine's readiness route until 200; fail fast if the process dies."""
    start = ctx.clock()
    with httpx.Client(timeout=2.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return ctx.clock() - start
            if not ctx.services.is_active(unit):
                raise ApplyError("engine-ready", f"{unit} stopped while loading {what}",
                                 ctx.services.log_tail(unit, 20))
            if ctx.clock() - start > timeout:
                raise ApplyError("engine-ready", f"{unit} not ready after {timeout:.0f} s",
                                 ctx.services.log_tail(unit, 20))
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
            if served_fingerprint(host, port) == want:
                url = f"https://{join_hostport(host, port)}/health"
                with httpx.Client(verify=False, timeout=5.0) as client:  # cert checked above
                    status = client.get(url).status_code
                    models = client.get(url.replace("/health", "/v1/models"), headers=auth)
                if status == 200 and models.status_code == 200:
                    return
                last = f"/health answered {status}, /v1/models {models.status_code}"
            else:
                last = "an old certificate is still served"
        except (OSError, httpx.HTTPError) as exc:
            last = str(exc) or type(exc).__name__
        ctx.sleep(0.1)
    raise ApplyError("verify", f"nginx on {host}:{port} is not serving the new configuration "
                     f"({last})", ctx.services.log_tail(NGINX, 10) + _nginx_errors(ctx))


def nginx_workers(layout: Layout) -> set[str]:
    try:
        master = int(layout.map(layout.nginx_pid).read_text().strip())
        return set(Path(f"/proc/{master}/task/{master}/children").read_text().split())
    except (OSError, ValueError):
        return set()


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


# -- apply --------------------------------------------------------------------------------

@contextlib.contextmanager
def apply_lock(layout: Layout) -> Iterator[None]:
    path = layout.map(layout.lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(layout.lock_file) from None
        yield


def log_line(layout: Layout, text: str) -> None:
    path = layout.map(layout.apply_log)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} {text}\n")


def _ensure_dirs(plan: Plan, layout: Layout) -> None:
    for path, mode in plan.dirs:
        p = layout.map(path)
        if not p.is_dir():
            makedirs(p.parent)
            makedirs(p, mode)


def recover(ctx: Context) -> bool:
    """Roll back the files of an apply that was killed half-way (call under the lock)."""
    if not journal_restore(ctx.layout):
        return False
    log_line(ctx.layout, "recovered: rolled back files of an interrupted apply")
    ctx.emit(Event("recover", "done", "rolled back an interrupted apply"))
    return True


def apply_answers(answers: Answers, ctx: Context, source: str = "answers", *,
                  force_acme: bool = False, acme: bool = True) -> ApplyResult:
    """Validate, plan and apply; recovery of an interrupted apply comes first, so the plan
    starts from the last good files (e.g. the API key that was in force). In letsencrypt mode
    the certificate is obtained afterwards, against the nginx this apply left running."""
    with apply_lock(ctx.layout):
        recovered = recover(ctx)
        plan = make_plan(answers, ctx, source)
        result = _apply_locked(plan, ctx, recovered)
        if acme and answers.tls.mode == "letsencrypt":
            result.tls = acme_step(answers, ctx, source, force=force_acme)
        return result


def renew(answers: Answers, ctx: Context, *, force: bool = False) -> Outcome:
    """``wizard renew`` and its timer: order when ARI (or the lifetime rule) says so."""
    if answers.tls.mode != "letsencrypt" or not answers.tls.domain:
        return Outcome("skipped", "TLS mode is self-signed: nothing to renew")
    with apply_lock(ctx.layout):
        recover(ctx)
        lineage = letsencrypt.load_lineage(ctx.layout, answers.tls.domain)
        ari = letsencrypt.ari_renewal_time(answers, ctx.layout, lineage) if lineage else None
        return acme_step(answers, ctx, "renew", force=force, ari_time=ari)


def acme_step(answers: Answers, ctx: Context, source: str, *, force: bool = False,
              ari_time: dt.datetime | None = None) -> Outcome:
    """Obtain or reuse the certificate, then install it through the apply path. Never raises
    for ACME trouble: the previous certificate keeps serving and the outcome says why."""
    domain = answers.tls.domain or ""
    ctx.emit(Event("acme", "running", domain))
    outcome = letsencrypt.obtain(
        answers, ctx.facts, ctx.layout, letsencrypt.make_resolver(ctx.site.hosts),
        lambda step, detail: ctx.emit(Event(step, "done", detail)), ctx.now(),
        force=force, ari_time=ari_time)
    if outcome.state == "issued":
        try:
            _apply_locked(make_plan(answers, ctx, source), ctx, False)
        except ApplyError as exc:
            letsencrypt.note_install_failure(ctx.layout, domain, outcome.previous_meta,
                                             exc.reason, ctx.now())
            outcome = Outcome("failed", f"the new certificate could not be installed "
                              f"({exc.reason}); the previous one keeps serving")
        else:
            letsencrypt.prune(ctx.layout, domain)
    if outcome.state in ("failed", "waiting"):
        _apply_locked(make_plan(answers, ctx, source), ctx, False)  # report shows the failure
    ok = outcome.state in ("issued", "reused")
    ctx.emit(Event("acme", "done" if ok else "failed", outcome.message))
    return outcome


def _apply_locked(plan: Plan, ctx: Context, recovered: bool) -> ApplyResult:
    layout = ctx.layout
    _ensure_dirs(plan, layout)
    changes = diff(plan, layout)
    actions = actions_for(changes, plan, ctx.services)
    result = ApplyResult(changes, actions, plan, recovered, list(plan.resolved.warnings))
    if result.noop:
        ctx.emit(Event("apply", "skipped", "nothing to change"))
        return result
    log_line(layout, f"apply: {len(changes)} file(s), actions: {', '.join(actions) or '-'}")
    was_active = {u: ctx.services.is_active(u)
                  for u in [plan.engine_unit, NGINX, *plan.other_units]}
    journal_begin(changes, layout)
    done: list[str] = []
    try:
        _execute(plan, changes, actions, ctx, done)
    except BaseException as exc:
        reason = exc if isinstance(exc, ApplianceError) else ApplyError(
            "apply", f"{type(exc).__name__}: {exc}")
        ok = _rollback(plan, ctx, was_active, done)
        log_line(layout, f"failed: {str(reason).splitlines()[0]}; rolled back: {ok}")
        if isinstance(reason, ApplyError):
            reason.rolled_back = ok
        if not isinstance(exc, Exception):
            raise
        raise reason from None
    _save_state(plan, layout)
    journal_clear(layout)
    log_line(layout, "done")
    ctx.emit(Event("apply", "done", f"{len(changes)} file(s) changed"))
    return result


def _execute(plan: Plan, changes: list[Change], actions: list[str], ctx: Context,
             done: list[str]) -> None:
    layout = ctx.layout
    ctx.emit(Event("write", "running", f"{len(changes)} file(s)"))
    for c in changes:
        target = layout.map(c.spec.path)
        if c.spec.content is None:
            remove(target)
        else:
            owner = c.spec.owner if layout.is_system and os.geteuid() == 0 else None
            atomic_write(target, c.spec.content, c.spec.mode, owner)
        ctx.emit(Event("write-file", "done", c.spec.path))
    ctx.emit(Event("write", "done", f"{len(changes)} file(s)"))
    nginx_touched = any(a.endswith(NGINX) for a in actions)
    if nginx_touched:
        ctx.emit(Event("nginx-test", "running"))
        nginx_test(ctx)
        ctx.emit(Event("nginx-test", "done"))
    for action in actions:
        verb, _, unit = action.partition(" ")
        if verb == "daemon-reload":
            ctx.services.daemon_reload()
            continue
        ctx.emit(Event(action, "running"))
        try:
            if verb == "stop":
                ctx.services.stop(unit)
            elif verb == "restart":
                ctx.services.restart(unit)
                done.append(action)
                ctx.emit(Event("engine-ready", "running", plan.resolved.model_id))
                took = wait_engine_ready(plan, ctx, ctx.site.ready_timeout)
                ctx.emit(Event("engine-ready", "done", f"{took:.1f} s"))
            elif verb == "start":
                ctx.services.start(unit)
            elif verb == "reload":
                reload_nginx(ctx)
        except ServiceError as exc:
            raise ApplyError(action, str(exc).splitlines()[0],
                             ctx.services.log_tail(unit, 15)) from None
        done.append(action)
        ctx.emit(Event(action, "done"))
    if nginx_touched or any(a.startswith("restart") for a in actions):
        ctx.emit(Event("verify", "running"))
        verify_nginx(plan, ctx)
        ctx.emit(Event("verify", "done"))


def _rollback(plan: Plan, ctx: Context, was_active: dict[str, bool], done: list[str]) -> bool:
    ctx.emit(Event("rollback", "running"))
    ok = True
    try:
        journal_restore(ctx.layout)
    except OSError:
        ok = False
    services = ctx.services
    with contextlib.suppress(ServiceError):
        services.daemon_reload()
    for unit, active in was_active.items():
        try:
            if unit == NGINX:
                if active and services.is_active(NGINX):
                    reload_nginx(ctx)  # and wait: old workers still serve the failed config
                elif active:
                    services.start(NGINX)
                elif services.is_active(NGINX):
                    services.stop(NGINX)
            elif active and (any(a.endswith(unit) for a in done)
                             or not services.is_active(unit)):
                services.restart(unit)
                _wait_previous_engine(unit, ctx)
            elif not active and services.is_active(unit):
                services.stop(unit)
        except (ServiceError, ApplyError):
            ok = False
    ctx.emit(Event("rollback", "done" if ok else "failed"))
    return ok


def _wait_previous_engine(unit: str, ctx: Context) -> None:
    """After a rollback restart, wait for the engine the last good state describes."""
    state = load_state(ctx.layout)
    listen, engine = (state.get("listen") or {}).get("engine"), state.get("engine")
    if listen and engine in ENGINES and ENGINES[engine].unit == unit:
        wait_ready(engine_url(listen) + ENGINES[engine].readiness_path, unit,
                   str(state.get("model_id")), ctx, ctx.site.ready_timeout)


def _save_state(plan: Plan, layout: Layout) -> None:
    state = plan.state | {"applied_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    atomic_write(layout.map(layout.state_file), json.dumps(state, indent=2).encode(), 0o600)
    answers = plan.resolved.answers
    if answers.api_key not in ("keep", "rotate"):
        answers = answers.replace(api_key="keep")
    atomic_write(layout.map(layout.applied_answers), answers.to_yaml().encode(), 0o600)

