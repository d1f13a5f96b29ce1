"""The transaction: write atomically, check, (re)start only what changed, else roll back."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import dataclass, field

from appliance.apply.causes import with_cause
from appliance.apply.changes import Change, actions_for, diff
from appliance.apply.journal import journal_begin, journal_clear, journal_restore, log_line
from appliance.apply.probes import (
    check_front,
    drain_workers,
    engine_url,
    nginx_workers,
    reload_front,
    verify_nginx,
    wait_engine_ready,
    wait_ready,
)
from appliance.apply.runtime import Context, Event
from appliance.apply.summary import Line, summarize_plan
from appliance.errors import ApplianceError, ApplyError, ServiceError
from appliance.host.files import atomic_write, makedirs, read_bytes, remove
from appliance.host.paths import Layout
from appliance.host.services import HAPROXY, NGINX
from appliance.plan.build import Plan
from appliance.plan.engines import ENGINES
from appliance.plan.state import load_state
from appliance.plan.strategy import remember_load
from appliance.tls.obtain import Outcome

DRAIN_S = 120.0
"""How long a switch lets streams on the old engine finish before stopping it."""


@dataclass
class ApplyResult:
    changes: list[Change]
    actions: list[str]
    plan: Plan
    recovered: bool = False
    warnings: list[str] = field(default_factory=list)
    tls: Outcome | None = None
    """What the ACME step did (letsencrypt mode only)."""
    summary: list[Line] = field(default_factory=list)
    """The change in plain words, as Review showed it."""

    @property
    def noop(self) -> bool:
        return not self.changes and not self.actions


def _ensure_dirs(plan: Plan, layout: Layout) -> None:
    for path, mode in plan.dirs:
        p = layout.map(path)
        if not p.is_dir():
            makedirs(p.parent)
            makedirs(p, mode)


def run_transaction(plan: Plan, ctx: Context, recovered: bool) -> ApplyResult:
    layout = ctx.layout
    _ensure_dirs(plan, layout)
    changes = diff(plan, layout)
    actions = actions_for(changes, plan, ctx.services)
    result = ApplyResult(changes, actions, plan, recovered, list(plan.resolved.warnings),
                         summary=summarize_plan(load_state(layout), plan, changes, actions))
    if result.noop:
        _record_answers(plan, layout)
        ctx.emit(Event("apply", "skipped", "nothing to change"))
        return result
    log_line(layout, f"apply: {len(changes)} file(s), actions: {', '.join(actions) or '-'}")
    units = [plan.engine_unit, plan.front_unit, *plan.other_units, *plan.daemons]
    was_active = {u: ctx.services.is_active(u) for u in units if u}
    journal_begin(changes, layout)
    done: list[str] = []
    try:
        _execute(plan, changes, actions, ctx, done)
    except BaseException as exc:
        reason = exc if isinstance(exc, ApplianceError) else ApplyError(
            "apply", f"{type(exc).__name__}: {exc}")
        ok = _rollback(plan, ctx, was_active, done, {a.partition(" ")[2] for a in actions})
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
    nginx_touched = any(a.endswith(plan.front_unit) for a in actions)
    if nginx_touched:
        check = "nginx-test" if plan.front_unit == NGINX else "haproxy-test"
        ctx.emit(Event(check, "running"))
        check_front(plan, ctx)
        ctx.emit(Event(check, "done"))
    step = plan.engine_step
    verified = False
    old_workers: set[str] = set()
    for action in actions:
        verb, _, unit = action.partition(" ")
        if verb == "daemon-reload":
            ctx.services.daemon_reload()
            continue
        if verb == "stop" and unit == step.previous:
            # Switch: nginx points at the new instance; finish checking, let streams drain.
            _verify(plan, ctx)
            verified = True
            ctx.emit(Event("drain", "running", unit))
            drain_workers(ctx, old_workers, DRAIN_S)
            ctx.emit(Event("drain", "done", unit))
        ctx.emit(Event(action, "running"))
        try:
            if verb == "stop":
                ctx.services.stop(unit)
            elif verb in ("restart", "start") and unit == plan.engine_unit:
                start = ctx.clock()
                (ctx.services.restart if verb == "restart" else ctx.services.start)(unit)
                done.append(action)
                ctx.emit(Event("engine-ready", "running", plan.resolved.model_id))
                wait_engine_ready(plan, ctx, ctx.site.ready_timeout)
                took = ctx.clock() - start
                plan.state["engine_load_s"] = remember_load(
                    load_state(ctx.layout).get("engine_load_s") or {}, plan.resolved.model_id,
                    took)
                ctx.emit(Event("engine-ready", "done", f"{took:.1f} s"))
            elif verb == "start":
                ctx.services.start(unit)
            elif verb == "restart":  # a daemon (the cluster agent)
                ctx.services.restart(unit)
            elif verb == "reload":
                old_workers = nginx_workers(ctx.layout)
                reload_front(unit, ctx)
        except ServiceError as exc:
            tail = ctx.services.log_tail(unit, 15)
            raise ApplyError(action, with_cause(str(exc).splitlines()[0], tail), tail) from None
        done.append(action)
        ctx.emit(Event(action, "done"))
    if not verified and (nginx_touched or any(a.startswith("restart") for a in actions)):
        _verify(plan, ctx)


def _verify(plan: Plan, ctx: Context) -> None:
    ctx.emit(Event("verify", "running"))
    verify_nginx(plan, ctx)
    ctx.emit(Event("verify", "done"))


def _rollback(plan: Plan, ctx: Context, was_active: dict[str, bool], done: list[str],
              planned: set[str]) -> bool:
    """Files back from the journal, then every unit as it was: ``planned`` names the units
    this apply meant to act on (started, stopped or restarted)."""
    ctx.emit(Event("rollback", "running"))
    ok = True
    try:
        journal_restore(ctx.layout)
    except OSError:
        ok = False
    services = ctx.services
    with contextlib.suppress(ServiceError):
        services.daemon_reload()
    # Engines that served come back first, then nginx points at them, then the rest stops.
    order = sorted(was_active.items(),
                   key=lambda kv: (kv[0] in (NGINX, HAPROXY)) + 2 * (not kv[1]))
    for unit, active in order:
        try:
            if unit in (NGINX, HAPROXY):
                if active and services.is_active(unit):
                    reload_front(unit, ctx)  # and wait: old workers still serve the failed config
                elif active:
                    services.start(unit)
                elif services.is_active(unit):
                    services.stop(unit)
            elif active and (any(a.endswith(unit) for a in done)
                             or not services.is_active(unit)):
                services.restart(unit)
                _wait_previous_engine(unit, ctx)
            elif not active and (unit in planned or services.is_active(unit)):
                # Stopped whatever its state: a unit this apply started that crashed and waits
                # to be started again (systemd's "activating (auto-restart)", the sandbox
                # keeper's RestartSec) is not active, yet would come back, again and again.
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
    loads = plan.state.get("engine_load_s") or load_state(layout).get("engine_load_s") or {}
    state = plan.state | {"engine_load_s": loads,
                          "applied_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    atomic_write(layout.map(layout.state_file), json.dumps(state, indent=2).encode(), 0o600)
    _record_answers(plan, layout)


def _record_answers(plan: Plan, layout: Layout) -> None:
    """answers.applied.yaml, only ever from validated answers (an explicit key is written as
    'keep'). Rewritten whenever it differs, also by an apply that changes nothing else, so
    applying repairs a hand-broken file; identical content is not written again."""
    text = plan.resolved.answers.to_yaml().encode()
    path = layout.map(layout.applied_answers)
    if read_bytes(path) != text:
        atomic_write(path, text, 0o600)
