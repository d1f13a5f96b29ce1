"""Pure change computation: plan vs disk -> changes, a reviewable diff, service actions."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from appliance.host.files import FileSpec, current_mode, read_bytes
from appliance.host.paths import Layout
from appliance.host.services import HAPROXY, ServiceManager
from appliance.plan.build import Plan
from appliance.plan.strategy import Strategy

ChangeKind = Literal["create", "update", "delete", "mode"]


@dataclass(frozen=True)
class Change:
    spec: FileSpec
    kind: ChangeKind
    old: bytes | None


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
    """Service actions in order. A switch starts the new engine instance beside the serving
    one, reloads nginx onto it, and stops the old instance last."""
    affected = set().union(*(c.spec.affects for c in changes)) if changes else set()
    step = plan.engine_step
    previous = step.previous if step.strategy is Strategy.SWITCH else None
    actions: list[str] = []
    if "units" in affected:
        actions.append("daemon-reload")
    for unit in plan.other_units:
        if unit != previous and services.is_active(unit):
            actions.append(f"stop {unit}")
    engine = plan.engine_unit  # None on the lb role
    if engine and previous:
        actions.append(f"start {engine}")
    elif engine and ("engine" in affected or not services.is_active(engine)):
        actions.append(f"restart {engine}")
    front = plan.front_unit
    if not services.is_active(front):
        actions.append(f"start {front}")
    elif ("haproxy" if front == HAPROXY else "nginx") in affected:
        actions.append(f"reload {front}")
    for unit in plan.daemons:
        if not services.is_active(unit):
            actions.append(f"start {unit}")
        elif unit in affected:
            actions.append(f"restart {unit}")
    actions += [f"start {t}" for t in plan.timers if not services.is_active(t)]
    if previous:
        actions.append(f"stop {previous}")
    return actions
