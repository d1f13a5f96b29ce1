"""OneFlow's service-template rules, re-stated in Python to check our template in CI.

Written from OpenNebula/one ``src/oca/ruby/opennebula/flow/service_template.rb`` (``SCHEMA``,
``VM_ROLE_SCHEMA``, ``validate``, ``validate_values``, ``validate_vmvalues``) and
``src/oca/ruby/opennebula/flow/grammar.treetop`` (the elasticity expression grammar, a PEG that
must consume the whole expression). Only what a template of ours can hit; extra properties are
allowed, as OneFlow's validator is configured to allow them.
"""

from __future__ import annotations

import re
from typing import Any

SHUTDOWN = ["terminate", "terminate-hard", "shutdown", "shutdown-hard"]
POLICY_TYPES = ["CHANGE", "CARDINALITY", "PERCENTAGE_CHANGE"]
# property: (type, required, extra rules)
TOP: dict[str, tuple[type | tuple[type, ...], bool, dict[str, Any]]] = {
    "name": (str, True, {}),
    "deployment": (str, False, {"enum": ["none", "straight"]}),
    "description": (str, False, {}),
    "shutdown_action": (str, False, {"enum": SHUTDOWN}),
    "roles": (list, True, {}),
    "user_inputs": (dict, False, {}),
    "user_inputs_values": (dict, False, {}),
    "ready_status_gate": (bool, False, {}),
    "automatic_deletion": (bool, False, {}),
    "networks": (dict, False, {}),
    "networks_values": (list, False, {}),
    "on_hold": (bool, False, {}),
}
VM_ROLE: dict[str, tuple[type | tuple[type, ...], bool, dict[str, Any]]] = {
    "name": (str, True, {"regex": r"^\w+$"}),
    "type": (str, True, {"enum": ["vm"]}),
    "cardinality": (int, False, {"minimum": 0}),
    "template_id": (int, True, {}),
    "template_contents": (dict, False, {}),
    "user_inputs": (dict, False, {}),
    "user_inputs_values": (dict, False, {}),
    "parents": (list, False, {"items": str}),
    "shutdown_action": (str, False, {"enum": SHUTDOWN}),
    "min_vms": (int, False, {"minimum": 0}),
    "max_vms": (int, False, {"minimum": 0}),
    "cooldown": (int, False, {"minimum": 0}),
    "on_hold": (bool, False, {}),
    "elasticity_policies": (list, False, {}),
    "scheduled_policies": (list, False, {}),
}
ELASTICITY: dict[str, tuple[type | tuple[type, ...], bool, dict[str, Any]]] = {
    "type": (str, True, {"enum": POLICY_TYPES}),
    "adjust": (int, True, {}),
    "min_adjust_step": (int, False, {"minimum": 1}),
    "period_number": (int, False, {"minimum": 0}),
    "period": (int, False, {"minimum": 0}),
    "expression": (str, True, {}),
    "cooldown": (int, False, {"minimum": 0}),
}


def check_object(doc: Any, schema: dict[str, Any], where: str) -> list[str]:
    if not isinstance(doc, dict):
        return [f"{where}: must be an object"]
    errors = []
    for key, (typ, required, rules) in schema.items():
        if key not in doc:
            if required:
                errors.append(f"{where}.{key}: required")
            continue
        value = doc[key]
        if (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
            errors.append(f"{where}.{key}: must be {getattr(typ, '__name__', typ)}")
            continue
        if "enum" in rules and value not in rules["enum"]:
            errors.append(f"{where}.{key}: {value!r} not in {rules['enum']}")
        if "regex" in rules and not re.search(rules["regex"], value):
            errors.append(f"{where}.{key}: {value!r} does not match {rules['regex']}")
        if "minimum" in rules and value < rules["minimum"]:
            errors.append(f"{where}.{key}: below {rules['minimum']}")
        if "items" in rules and not all(isinstance(v, rules["items"]) for v in value):
            errors.append(f"{where}.{key}: items must be {rules['items'].__name__}")
    return errors


class _Grammar:
    """grammar.treetop as a recursive-descent PEG: each rule returns the end position or None."""

    COMP = ("==", "=", "!=", "<>", ">=", ">", "<=", "<")
    NUMBER = re.compile(r"-?[0-9]+\.[0-9]+|-?[0-9]+")
    NAME = "[a-zA-Z][0-9a-zA-Z_]*"
    VARIABLE = re.compile(f"\"{NAME}\"|'{NAME}'|{NAME}")

    def __init__(self, text: str) -> None:
        self.s = text

    def space(self, i: int) -> int:
        while i < len(self.s) and self.s[i] == " ":
            i += 1
        return i

    def lit(self, i: int, *options: str) -> int | None:
        for o in options:
            if self.s.startswith(o, i):
                return i + len(o)
        return None

    def expression(self, i: int) -> int | None:
        i = self.space(i)
        j = self.boolean_exp(i)
        if j is None:
            j = self.logic_cond(i)
        return None if j is None else self.space(j)

    def boolean_exp(self, i: int) -> int | None:
        for ops in (("&&", "&"), ("||", "|")):
            j = self.logic_cond(i)
            if j is None:
                return None
            k = self.lit(self.space(j), *ops)
            if k is None:
                continue
            end = self.expression(self.space(k))
            if end is not None:
                return end
        return None

    def logic_cond(self, i: int) -> int | None:
        j = self.operand(i)
        if j is not None:
            k = self.lit(self.space(j), *self.COMP)
            if k is not None:
                end = self.operand(self.space(k))
                if end is not None:
                    return end
        j = self.lit(i, "!")
        if j is not None:
            end = self.expression(self.space(j))
            if end is not None:
                return end
        j = self.lit(i, "(")
        if j is not None:
            k = self.expression(self.space(j))
            if k is not None:
                end = self.lit(self.space(k), ")")
                if end is not None:
                    return end
        return None

    def operand(self, i: int) -> int | None:
        for pattern in (self.NUMBER, self.VARIABLE):
            m = pattern.match(self.s, i)
            if m:
                return m.end()
        return None


def expression_ok(text: str) -> bool:
    """True when treetop would parse the whole expression."""
    return _Grammar(text).expression(0) == len(text)


def expression_attributes(text: str) -> set[str]:
    """The attribute names an expression reads (upper-cased, as OneFlow looks them up)."""
    names = re.findall(r"[\"']?([a-zA-Z][0-9a-zA-Z_]*)[\"']?", text)
    return {n.upper() for n in names}


def validate(template: dict[str, Any]) -> list[str]:
    """ServiceTemplate.validate for a 7.x-format template: every problem, [] when valid."""
    errors = check_object(template, TOP, "template")
    roles = template.get("roles") if isinstance(template.get("roles"), list) else []
    names = [r.get("name") for r in roles if isinstance(r, dict)]
    for n in {n for n in names if names.count(n) > 1}:
        errors.append(f"Role name '{n}' is repeated")
    for role in roles:
        if role.get("type", "vm") != "vm":
            errors.append(f"Unsupported role type {role.get('type')!r}")
            continue
        where = f"role {role.get('name')}"
        errors += check_object(role, VM_ROLE, where)
        card = role.get("cardinality", 0)
        if role.get("min_vms") is not None and role["min_vms"] > card:
            errors.append(f"{where}: 'cardinality' must be greater than or equal to 'min_vms'")
        if role.get("max_vms") is not None and role["max_vms"] < card:
            errors.append(f"{where}: 'cardinality' must be lower than or equal to 'max_vms'")
        policies = role.get("elasticity_policies") or []
        if (policies or role.get("scheduled_policies")) and (
                role.get("min_vms") is None or role.get("max_vms") is None):
            errors.append(f"{where}: policies need both 'min_vms' and 'max_vms'")
        for n, policy in enumerate(policies):
            errors += check_object(policy, ELASTICITY, f"{where} policy #{n}")
            exp = policy.get("expression", "")
            if isinstance(exp, str) and (not exp or not expression_ok(exp)):
                errors.append(f"{where}, elasticity policy #{n} 'expression' parse error")
    return errors
