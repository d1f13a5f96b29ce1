"""Where each answers field lives in the wizard, and how a text box becomes a raw value.

The schema names fields ("model.context_size", "tls.email"); the wizard shows each error at
the widget that holds that field. This table is the only place that knows which screen and
which widget that is. Nothing here validates: the one schema gate does that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from appliance.errors import AnswersError, FieldError

if TYPE_CHECKING:
    from appliance.answers.schema import Answers

_WIDGETS_BY_STEP: dict[str, dict[str, str]] = {
    "model": {"model": "models", "model.id": "models", "model.path": "path",
              "model.context_size": "context", "model.sha256": "sha"},
    "performance": {"threads": "threads", "parallel": "parallel"},
    "tls": {"tls": "mode", "tls.domain": "domain", "tls.email": "email",
            "tls.skip_dns_check": "skip"},
    "key": {"api_key": "choice"},
}

#: field (or field prefix) -> (step, widget id). Longest prefix wins.
FIELD_WIDGETS: dict[str, tuple[str, str]] = {
    field: (step, widget)
    for step, widgets in _WIDGETS_BY_STEP.items() for field, widget in widgets.items()}

#: Fields no screen edits (engine, listen.*, version, a broken file) are shown on Status.
ELSEWHERE = ("status", "status")

INTEGER = re.compile(r"[+-]?[0-9]+")


def locate(field: str) -> tuple[str, str]:
    """The (step, widget id) that shows ``field``."""
    name = field
    while name:
        if name in FIELD_WIDGETS:
            return FIELD_WIDGETS[name]
        name = name.rpartition(".")[0]
    return ELSEWHERE


def on_step(step: str, errors: Iterable[FieldError]) -> list[FieldError]:
    return [e for e in errors if locate(e.field)[0] == step]


def first_step(errors: Iterable[FieldError], order: tuple[str, ...]) -> str | None:
    """The earliest step (in wizard order) that shows one of ``errors``."""
    steps = {locate(e.field)[0] for e in errors}
    return next((s for s in order if s in steps), None)


def scalar(text: str) -> Any:
    """A text box's value as the raw answer a YAML file would hold: a whole number becomes an
    int, anything else stays the text it is (the gate says what is wrong with it)."""
    text = text.strip()
    if INTEGER.fullmatch(text):
        return int(text)
    return text


def optional(text: str) -> str | None:
    """An optional text box: empty means "not set"."""
    return text.strip() or None


def message(error: FieldError) -> str:
    """One line for the operator: what is wrong, then how to fix it."""
    return f"{error.message}: {error.fix}" if error.fix else error.message


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``, section by section (a screen sends only its own fields)."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


LABELS = {"model.id": "Model", "model.path": "Model file", "model.context_size": "Context",
          "threads": "Threads", "parallel": "Parallel slots", "tls.mode": "Certificate",
          "tls.domain": "Domain", "tls.email": "E-mail", "api_key": "API key"}


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """"Threads 2 -> 1" for each answer that differs, in the wizard's order."""
    old, new = _flat(before), _flat(after)
    keys = [k for k in LABELS if k in old or k in new]
    keys += sorted(k for k in old.keys() | new.keys() if k not in LABELS)
    return [f"{LABELS.get(k, k)} {_shown(old.get(k))} -> {_shown(new.get(k))}" for k in keys
            if old.get(k) != new.get(k)]


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def gate(draft: dict[str, Any]) -> tuple[Answers | None, list[FieldError]]:
    """The one schema gate, as the wizard calls it: validated answers, or every problem."""
    from appliance.answers.schema import parse

    try:
        return parse(draft, "wizard"), []
    except AnswersError as exc:
        return None, list(exc.errors)
