"""The OneFlow service template we ship passes OneFlow's schema and elasticity grammar
(re-stated in ``oneflow_rules`` from OpenNebula/one ``service_template.rb`` and
``grammar.treetop``), and is wired to what the appliance really reads and publishes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.answers.context import PARAMS
from appliance.cluster.records import BUSY
from tests.cluster.oneflow_rules import expression_attributes, expression_ok, validate

TEMPLATE = Path(__file__).resolve().parents[2] / "packer/oneflow/slm-service.json"


def _template() -> dict[str, Any]:
    return dict(json.loads(TEMPLATE.read_text()))


def _role(t: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in t["roles"] if r["name"] == name)


def test_template_passes_oneflow_schema_and_grammar() -> None:
    assert validate(_template()) == []


def test_template_is_the_lb_backend_service_the_issue_describes() -> None:
    t = _template()
    assert t["deployment"] == "straight" and t["ready_status_gate"] is True
    lb, backend = _role(t, "lb"), _role(t, "backend")
    assert backend["parents"] == ["lb"]
    assert backend["min_vms"] <= backend["cardinality"] <= backend["max_vms"]
    assert backend["shutdown_action"] == "terminate"  # graceful ACPI: the drain runs
    for role in (lb, backend):
        ctx = role["template_contents"]["CONTEXT"]
        assert ctx["TOKEN"] == "YES" and ctx["REPORT_READY"] == "YES"
        assert ctx["ONEAPP_SLM_CLUSTER_ROLE"] == role["name"]
    assert _role(t, "lb")["template_contents"]["CONTEXT"]["ONEAPP_SLM_LB_BACKENDS"] == "onegate"
    private = {n["NETWORK_ID"] for n in backend["template_contents"]["NIC"]}
    assert private == {"$Private"} and "$Private" in {
        n["NETWORK_ID"] for n in lb["template_contents"]["NIC"]}
    assert set(t["networks"]) == {"Public", "Private"}


def test_user_inputs_and_elasticity_use_what_the_appliance_knows() -> None:
    t = _template()
    assert set(t["user_inputs"]) <= set(PARAMS)  # every input is an ONEAPP_* the gate reads
    for role in t["roles"]:
        assert set(role["template_contents"]["CONTEXT"]) - {"NETWORK", "TOKEN",
                                                             "REPORT_READY"} <= set(PARAMS)
    policies = _role(t, "backend")["elasticity_policies"]
    ups = [p for p in policies if p["adjust"] > 0]
    downs = [p for p in policies if p["adjust"] < 0]
    assert ups and downs and all(p.get("cooldown") for p in policies)
    for p in policies:
        assert expression_attributes(p["expression"]) == {BUSY}


@pytest.mark.parametrize("expression,ok", [
    ("SLM_LB_BUSY > 0.8", True), ("SLM_LB_BUSY>0.8 && SLM_LB_BUSY < 2", True),
    ("!(SLM_LB_BUSY < 0.2)", True), ("'SLM_LB_BUSY' >= 1", True), ("A > -1 | B <> 2", True),
    ("SLM_LB_BUSY >", False), ("SLM_LB_BUSY > 0,8", False), ("SLM_LB_BUSY > 1.", False),
    ("> 1", False), ("A ~ 1", False), ("(A > 1", False), ("", False)])
def test_the_grammar_checker_itself(expression: str, ok: bool) -> None:
    assert expression_ok(expression) is ok


@pytest.mark.parametrize("mutate,message", [
    (lambda t: _role(t, "backend").update(name="back-end"), "does not match"),
    (lambda t: _role(t, "backend").update(cardinality=20), "lower than or equal to 'max_vms'"),
    (lambda t: _role(t, "backend").pop("min_vms"), "need both 'min_vms' and 'max_vms'"),
    (lambda t: _role(t, "backend")["elasticity_policies"][0].update(type="UP"), "not in"),
    (lambda t: _role(t, "backend")["elasticity_policies"][0].update(expression="BUSY >"),
     "parse error"),
    (lambda t: t.update(deployment="parallel"), "not in"),
    (lambda t: t["roles"].append(copy.deepcopy(t["roles"][0])), "is repeated"),
    (lambda t: _role(t, "lb").pop("template_id"), "required"),
])
def test_the_schema_checker_catches_what_oneflow_refuses(mutate: Any, message: str) -> None:
    t = _template()
    mutate(t)
    assert any(message in e for e in validate(t)), validate(t)
