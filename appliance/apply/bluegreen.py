"""The engine's way to a new plan: keep, start, switch with no downtime, or restart in place.

llama-server alternates between two slots (``engines.LlamaServer.slots``: two units on two
loopback ports). The slot serving now keeps serving while the other loads the new
configuration; nginx then switches its upstream by a reload and the old instance stops once
nginx's old workers (and the streams they carry) are gone. When both instances do not fit in
the available RAM, or the engine cannot run twice, it restarts in place and Review says how
long requests get 503 + Retry-After. The choice itself is pure (``plan.strategy.choose``);
this module gathers its inputs from the services, the facts and the last state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from appliance.answers.hostport import split_hostport
from appliance.apply.changes import diff
from appliance.apply.runtime import Context
from appliance.host.sandbox import port_free
from appliance.plan.build import Plan, build_plan
from appliance.plan.engines import ENGINE_UNITS, ENGINES, other_slot
from appliance.plan.resolve import Resolved
from appliance.plan.secrets import Secrets
from appliance.plan.strategy import EngineFacts, Strategy, choose, load_times


def current_slot(state: dict[str, Any], engine: str) -> str:
    """The slot serving now for this engine (the first one on a first apply or a new engine)."""
    slots = ENGINES[engine].slots
    slot = state.get("engine_slot") if state.get("engine") == engine else None
    return str(slot) if slot in slots else slots[0]


def engine_facts(plan: Plan, state: dict[str, Any], ctx: Context) -> EngineFacts:
    r = plan.resolved
    engine = ENGINES[r.answers.engine]
    running = [u for u in ENGINE_UNITS if ctx.services.is_active(u)]
    serving = plan.engine_unit in running
    changed = not serving or any("engine" in c.spec.affects for c in diff(plan, ctx.layout))
    spare = engine.slot_listen(r.answers.listen.engine,
                               other_slot(engine, str(plan.state["engine_slot"])))
    host, port = split_hostport(spare)
    if not serving:
        blocker = f"the engine changes to {engine.name}"
    elif len(engine.slots) < 2:
        blocker = f"{engine.name} cannot run twice side by side"
    elif not port_free(port, host):
        blocker = f"the spare engine port {port} is in use"
    else:
        blocker = ""
    size = ctx.layout.map(r.model_path).stat().st_size
    same_file = state.get("model_path") == r.model_path
    loads = load_times((state.get("engine_load_s") or {}).get(r.model_id))
    return EngineFacts(
        changed=changed, running=bool(running), twin_blocker=blocker,
        need_bytes=r.memory_estimate, shared_bytes=size if same_file else 0,
        available_bytes=ctx.facts.mem_available, total_bytes=ctx.facts.mem_total,
        model_bytes=size, load_s=max(loads) if loads else None)


def plan_engine(r: Resolved, sec: Secrets, state: dict[str, Any], ctx: Context) -> Plan:
    """The plan for the slot serving now, or for the other slot when the engine switches."""
    slot = current_slot(state, r.answers.engine)
    plan = build_plan(r, ctx.facts, ctx.site, ctx.layout, sec, slot)
    step = choose(engine_facts(plan, state, ctx))
    if step.strategy is Strategy.SWITCH:
        previous = plan.engine_unit
        plan = build_plan(r, ctx.facts, ctx.site, ctx.layout, sec,
                          other_slot(ENGINES[r.answers.engine], slot))
        step = replace(step, previous=previous)
    plan.engine_step = step
    return plan
