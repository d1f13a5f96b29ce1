"""The rollback matrix as fast unit tests: the real apply transaction (plan, journal, writes,
checks, rollback) against in-memory services, probes and clock (tests/memory.py).

Each case: a good configuration is applied, a change fails at one step, and afterwards every
file is as it was and every service runs what it ran before. The same guarantees are checked
on the real stack in tests/stack/test_stack.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.answers.schema import Answers, parse
from appliance.apply import transaction
from appliance.apply.changes import diff
from appliance.apply.journal import journal_begin
from appliance.apply.run import apply_answers, make_plan
from appliance.apply.runtime import Context
from appliance.errors import ApplyError, LockedError
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.sandbox import default_answers
from appliance.host.site import Site
from tests.conftest import tree_hashes
from tests.memory import FakeClock, MemoryProbes, MemoryServices, NginxTest, tiny_gguf

FACTS = Facts(logical_cpus=4, physical_cores=2, cpu_flags=frozenset({"avx2"}),
              mem_total=8 << 30, hostname="vm")
ENGINE = "llama-server.service"


@dataclass
class World:
    ctx: Context
    services: MemoryServices
    probes: MemoryProbes
    nginx: NginxTest
    base: Answers

    def answers(self, **changes: Any) -> Answers:
        return self.base.replace(**changes)

    def snapshot(self) -> tuple[dict[str, str], dict[str, bool], dict[str, str]]:
        return (tree_hashes(self.ctx.layout.root), dict(self.services.active),
                dict(self.services.loaded))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    layout = Layout(tmp_path / "root")
    models = layout.map(layout.models_dir)
    models.mkdir(parents=True)
    tiny_gguf(models / "model.gguf")
    engine_bin = tmp_path / "llama-server"
    engine_bin.write_text("")
    defaults = default_answers(20000)
    site = Site(service_manager="sandbox", llama_server_bin=str(engine_bin), nginx_bin="nginx",
                engine_user=None, nginx_user="nobody", ready_timeout=30.0, defaults=defaults)
    base = parse(defaults | {"model": {"path": f"{layout.models_dir}/model.gguf",
                                       "context_size": 2048}}, "test")
    services = MemoryServices(layout)
    probes = MemoryProbes(services)
    clock = FakeClock()
    nginx = NginxTest()
    ctx = Context(layout=layout, site=site, facts=FACTS, services=services, runner=nginx,
                  clock=clock, sleep=clock.sleep, probes=probes)
    w = World(ctx, services, probes, nginx, base)
    apply_answers(base, ctx, "baseline")
    assert services.active == {ENGINE: True, "nginx.service": True}
    yield w


def _fails_and_restores(w: World, answers: Answers, step: str) -> ApplyError:
    before = w.snapshot()
    with pytest.raises(ApplyError) as failed:
        apply_answers(answers, w.ctx, "test")
    assert failed.value.step == step, failed.value
    assert failed.value.rolled_back, failed.value
    assert w.snapshot() == before
    assert not w.ctx.layout.map(w.ctx.layout.journal_dir).exists()
    return failed.value


def test_same_answers_twice_change_nothing(world: World) -> None:
    before = world.snapshot()
    log = len(world.services.log)
    assert apply_answers(world.base, world.ctx, "again").noop
    assert world.snapshot() == before and len(world.services.log) == log


def test_a_failed_write_restores_every_file(world: World,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = transaction.atomic_write, []

    def disk_full(path: Path, data: bytes, mode: int, owner: Any = None) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data, mode, owner)

    monkeypatch.setattr(transaction, "atomic_write", disk_full)
    err = _fails_and_restores(world, world.answers(threads=1, api_key="rotate"), "apply")
    assert "No space left" in err.reason


def test_nginx_rejecting_the_config_restores_it(world: World) -> None:
    world.nginx.reject = "unknown directive"
    err = _fails_and_restores(world, world.answers(api_key="rotate"), "nginx-test")
    assert "unknown directive" in err.log_tail


def test_an_engine_that_never_gets_ready_is_replaced_by_the_old_one(world: World) -> None:
    world.probes.engine_ready = lambda unit: "--threads 1 " not in unit
    err = _fails_and_restores(world, world.answers(threads=1), "engine-ready")
    assert "not ready after 30 s" in err.reason
    assert world.ctx.clock() < 60  # waited on the fake clock only


def test_an_engine_that_fails_to_start_is_replaced_by_the_old_one(world: World) -> None:
    world.services.fails = lambda unit, config: unit == ENGINE and "--threads 1 " in config
    _fails_and_restores(world, world.answers(threads=1), f"restart {ENGINE}")


def test_nginx_not_serving_the_new_config_is_rolled_back(world: World) -> None:
    world.probes.health = 503
    err = _fails_and_restores(world, world.answers(api_key="rotate"), "verify")
    assert "/health answered 503" in err.reason


def test_an_apply_killed_mid_journal_is_rolled_back_by_the_next(world: World) -> None:
    before = world.snapshot()
    layout = world.ctx.layout
    changed = world.answers(threads=1, api_key="rotate")
    changes = diff(make_plan(changed, world.ctx), layout)
    journal_begin(changes, layout)
    for c in changes[: len(changes) // 2]:  # the process dies after half of the writes
        layout.map(c.spec.path).write_bytes(c.spec.content or b"")
    result = apply_answers(world.base, world.ctx, "next boot")
    assert result.recovered
    assert world.snapshot()[0] == before[0]


def test_a_journal_cut_short_is_discarded(world: World) -> None:
    before = world.snapshot()
    jdir = world.ctx.layout.map(world.ctx.layout.journal_dir)
    jdir.mkdir(parents=True)
    (jdir / "0000").write_bytes(b"half a backup")  # died before journal.json was written
    assert not apply_answers(world.base, world.ctx, "next boot").recovered
    assert world.snapshot() == before and not jdir.exists()


def test_a_busy_lock_names_the_holder_and_changes_nothing(world: World) -> None:
    from appliance.apply.journal import apply_lock

    before = world.snapshot()
    with apply_lock(world.ctx.layout), pytest.raises(LockedError) as busy:
        apply_answers(world.answers(threads=1), world.ctx, "test")
    assert str(busy.value) == f"another apply is running (pid {os.getpid()}); nothing was changed"
    assert busy.value.exit_code == 1 and "restored" not in str(busy.value)
    assert world.snapshot() == before


def test_the_cli_reports_a_busy_lock_without_rollback_words(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from appliance.apply.journal import apply_lock
    from wizard.cli import main

    layout = world.ctx.layout
    layout.map(layout.site_file).parent.mkdir(parents=True, exist_ok=True)
    layout.map(layout.site_file).write_text(world.ctx.site.to_yaml())
    answers = tmp_path / "answers.yaml"
    answers.write_text("threads: 1\n")
    with apply_lock(layout):
        assert main(["--root", str(layout.root), "--apply", str(answers)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: another apply is running (pid {os.getpid()}); nothing was changed\n"


def test_applying_the_repaired_answers_repairs_the_stored_file(world: World) -> None:
    from appliance.answers.stored import applied_answers, repaired_answers

    layout, site = world.ctx.layout, world.ctx.site
    stored = layout.map(layout.applied_answers)
    good = stored.read_text()
    stored.write_text(good.replace("parallel: 2", "parallel: 0"))
    start = repaired_answers(layout, site)
    assert [p.field for p in start.problems] == ["parallel"]
    before = world.snapshot()
    result = apply_answers(start.answers, world.ctx, "wizard")
    assert result.noop  # the running stack already matches: only the record is rewritten
    assert applied_answers(layout, site) == start.answers and stored.read_text() == good
    after = world.snapshot()
    assert {k for k in after[0] if after[0][k] != before[0].get(k)} == {
        "var/lib/slm-appliance/answers.applied.yaml"} and after[1:] == before[1:]


def test_a_rollback_that_cannot_restart_the_old_engine_says_so(world: World) -> None:
    world.services.fails = lambda unit, config: unit == ENGINE  # neither new nor old starts
    files_before = world.snapshot()[0]
    with pytest.raises(ApplyError) as failed:
        apply_answers(world.answers(threads=1), world.ctx, "test")
    assert not failed.value.rolled_back and "ROLLBACK INCOMPLETE" in str(failed.value)
    assert world.snapshot()[0] == files_before  # the files are back all the same
