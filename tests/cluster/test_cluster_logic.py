"""The cluster glue's logic, fast: busy ratio, publish-after-ready, discovery apply, drain."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from appliance.cluster.agent import Agent, BackendSelf
from appliance.cluster.busy import busy_ratio, format_ratio, in_flight, parse_metrics
from appliance.cluster.drain import LB_NOTICE_S, drain, mark_draining
from appliance.cluster.records import ADDRESS, BUSY, PUBLISHED, SLOTS, record
from appliance.host.paths import Layout

METRICS = """# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 1
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 2
llamacpp:prompt_tokens_total 1234
"""
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class FakeGate:
    def __init__(self, service: dict[str, Any] | None = None) -> None:
        self.updates: list[dict[str, str]] = []
        self.erased: list[str] = []
        self.service = service or {"roles": []}

    def vm_update(self, attrs: dict[str, str]) -> None:
        self.updates.append(dict(attrs))

    def vm_erase(self, key: str) -> bool:
        self.erased.append(key)
        return True

    def vm_show(self) -> dict[str, Any]:
        return {"TEMPLATE": {"NIC": {"IP": "10.0.0.9"}}}

    def service_show(self, extended: bool = True) -> dict[str, Any]:
        return self.service


def test_busy_ratio_from_llama_server_metrics() -> None:
    m = parse_metrics(METRICS)
    assert busy_ratio(m, 2) == 0.5 and busy_ratio(m, 1) == 1.0 and busy_ratio({}, 4) == 0.0
    assert in_flight(m) == 3
    assert format_ratio(0.5) == "0.50"  # a dot, whatever the locale


def _me(healthy: list[bool], https: str = "127.0.0.1:20443") -> BackendSelf:
    return BackendSelf(https, 2, PEM, lambda: healthy[0], lambda: METRICS)


def test_backend_publishes_only_once_ready_then_only_changes(tmp_path: Path) -> None:
    gate = FakeGate()
    agent = Agent(Layout(tmp_path), gate)  # type: ignore[arg-type]
    healthy = [False]
    agent.tick_backend(_me(healthy))
    assert gate.updates == []  # still loading: nothing published
    healthy[0] = True
    agent.tick_backend(_me(healthy))
    assert gate.updates == [record("127.0.0.1:20443", 2, PEM) | {BUSY: "0.50"}]
    agent.tick_backend(_me(healthy))
    assert len(gate.updates) == 1  # same busy ratio: no OneGate write
    mark_draining(Layout(tmp_path))
    agent.tick_backend(_me(healthy))
    assert len(gate.updates) == 1


def test_unspecified_listener_publishes_the_nic_address(tmp_path: Path) -> None:
    gate = FakeGate()
    agent = Agent(Layout(tmp_path), gate)  # type: ignore[arg-type]
    agent.tick_backend(_me([True], "0.0.0.0:443"))
    assert gate.updates[0][ADDRESS] == "10.0.0.9:443" and gate.updates[0][SLOTS] == "2"


def _service(*nodes: tuple[str, dict[str, str]]) -> dict[str, Any]:
    return {"roles": [{"name": "backend", "nodes": [
        {"deploy_id": int(i), "vm_info": {"VM": {"ID": i, "STATE": "3", "LCM_STATE": "3",
                                                 "USER_TEMPLATE": ut}}} for i, ut in nodes]}]}


def test_lb_applies_only_when_the_set_changes_and_retries_a_failed_apply(tmp_path: Path) -> None:
    one = record("10.0.0.1:443", 1, PEM)
    gate = FakeGate(_service(("41", one)))
    agent = Agent(Layout(tmp_path), gate)  # type: ignore[arg-type]
    applied: list[int] = []
    assert agent.tick_lb(lambda: applied.append(1)) is True
    assert agent.tick_lb(lambda: applied.append(1)) is False
    gate.service = _service(("41", one), ("42", record("10.0.0.2:443", 1, PEM)))

    def failing() -> None:
        raise RuntimeError("lock busy")

    with contextlib.suppress(RuntimeError):
        agent.tick_lb(failing)
    assert agent.tick_lb(lambda: applied.append(1)) is True  # the change is not forgotten
    assert applied == [1, 1]


class FakeServices:
    def __init__(self) -> None:
        self.active = {"slm-cluster.service", "llama-server.service", "nginx.service"}

    def is_active(self, unit: str) -> bool:
        return unit in self.active

    def stop(self, unit: str) -> None:
        self.active.discard(unit)


def test_drain_marks_erases_waits_for_streams_then_stops(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    now = [0.0]
    readings = iter([{"llamacpp:requests_processing": 1.0}] * 4 + [{}] * 10)
    services = FakeServices()
    gate = FakeGate()
    result = drain(layout, services, ["slm-cluster.service", "llama-server.service"],  # type: ignore[arg-type]
                   lambda: next(readings), gate, 60, lambda: now[0],  # type: ignore[arg-type]
                   lambda s: now.__setitem__(0, now[0] + s))
    assert (tmp_path / "run/slm-appliance/draining").exists()
    assert gate.erased == list(PUBLISHED)
    assert result.clean and result.waited_s >= LB_NOTICE_S + 4 * 0.5
    assert services.active == set()
    # nginx first: what the LB still sends is refused (and retried elsewhere), never a 503
    assert result.stopped == ["nginx.service", "slm-cluster.service", "llama-server.service"]


def test_drain_gives_up_at_the_timeout(tmp_path: Path) -> None:
    now = [0.0]
    services = FakeServices()
    result = drain(Layout(tmp_path), services, ["llama-server.service"],  # type: ignore[arg-type]
                   lambda: {"llamacpp:requests_processing": 1.0}, None, 20, lambda: now[0],
                   lambda s: now.__setitem__(0, now[0] + s))
    assert not result.clean and result.left_in_flight == 1 and 20 <= result.waited_s < 21


def test_shutdown_drain_leaves_stopping_to_systemd(tmp_path: Path) -> None:
    from appliance.host.site import Site
    from appliance.plan.render.cluster import render_drain_unit

    now = [0.0]
    services = FakeServices()
    result = drain(Layout(tmp_path), services, ["llama-server.service"],  # type: ignore[arg-type]
                   lambda: {}, None, 60, lambda: now[0],
                   lambda s: now.__setitem__(0, now[0] + s), stop=False)
    assert result.clean and result.stopped == [] and "llama-server.service" in services.active
    unit = render_drain_unit(Site(), Layout(Path("/")), ("llama-server.service",
                                                         "llama-server-b.service"))
    assert "After=network-online.target llama-server.service llama-server-b.service" in unit
    assert "drain --timeout 150 --leave-running" in unit and "TimeoutStopSec=170" in unit
