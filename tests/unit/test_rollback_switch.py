"""The rollback matrix for the zero-downtime switch (RAM fits two engine instances): the new
instance starts beside the old one; when it fails at any step the old one never stopped
serving and nothing is switched. Same in-memory world as test_rollback.py."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from appliance.apply import transaction
from appliance.apply.run import apply_answers, make_plan
from appliance.apply.runtime import Context
from appliance.errors import ApplyError
from appliance.plan.strategy import Strategy
from tests.conftest import tree_hashes
from tests.unit.test_rollback import ENGINE, FACTS, World, _fails_and_restores
from tests.unit.test_rollback import world as world  # the fixture, for roomy

SPARE = "llama-server-b.service"


@pytest.fixture
def roomy(world: World) -> World:
    world.ctx.facts = dataclasses.replace(FACTS, mem_available=4 << 30)
    return world


def test_a_change_that_fits_switches_instances_and_stops_the_old_last(roomy: World) -> None:
    new = roomy.answers(threads=1)
    assert make_plan(new, roomy.ctx).engine_step.strategy is Strategy.SWITCH
    del roomy.services.log[:]
    result = apply_answers(new, roomy.ctx, "test")
    assert roomy.services.log == ["daemon-reload", f"start {SPARE}", "reload nginx.service",
                                  f"stop {ENGINE}"]
    assert result.actions[-1] == f"stop {ENGINE}"
    assert roomy.services.active == {ENGINE: False, SPARE: True, "nginx.service": True}
    assert "--threads 1 " in roomy.services.loaded[SPARE]
    assert apply_answers(new, roomy.ctx, "again").noop  # the switched state is idempotent


def test_a_new_instance_that_fails_to_start_switches_nothing(roomy: World) -> None:
    roomy.services.fails = lambda unit, config: "--threads 1 " in config
    _fails_and_restores(roomy, roomy.answers(threads=1), f"start {SPARE}")
    assert f"stop {ENGINE}" not in roomy.services.log  # the old one never stopped
    # It failed under Restart=on-failure: not "active", yet systemd would start it again and
    # again (a crash loop beside the serving engine) unless the rollback stops it.
    assert not roomy.services.restarting


def _switch_fails_and_restores(w: World, step: str) -> ApplyError:
    """Like ``_fails_and_restores``; the new instance may have loaded before it was stopped."""
    files, active = tree_hashes(w.ctx.layout.root), {u for u, a in w.services.active.items() if a}
    with pytest.raises(ApplyError) as failed:
        apply_answers(w.answers(threads=1), w.ctx, "test")
    assert failed.value.step == step and failed.value.rolled_back, failed.value
    assert tree_hashes(w.ctx.layout.root) == files
    assert {u for u, a in w.services.active.items() if a} == active
    assert f"stop {ENGINE}" not in w.services.log  # the old one never stopped serving
    return failed.value


def test_a_new_instance_never_ready_switches_nothing(roomy: World) -> None:
    roomy.probes.engine_ready = lambda unit: "--threads 1 " not in unit
    err = _switch_fails_and_restores(roomy, "engine-ready")
    assert SPARE in err.reason


def test_nginx_failing_on_the_new_instance_switches_back(roomy: World) -> None:
    def verify(plan: Any, ctx: Context, timeout: float = 10.0) -> None:
        if plan.engine_unit == SPARE:
            raise ApplyError("verify", "simulated: nginx does not serve the new instance")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transaction, "verify_nginx", verify)
        _switch_fails_and_restores(roomy, "verify")
    log = roomy.services.log
    assert log[-1] == f"stop {SPARE}"
    assert log.index("reload nginx.service") < len(log) - 1  # nginx back before the stop
