"""The answers model (schema version 1) and its one gate, :func:`parse`.

Every way in (an answers file, ONEAPP_* context, ``answers.applied.yaml``, the wizard's draft)
becomes :class:`Answers` only through ``parse``, which collects every problem at once as
:class:`FieldError` s naming the field and the fix. ``Answers`` cannot be built any other way:
its constructor needs a seal that only this module makes (mypy rejects ``Answers(...)``
elsewhere; at run time an unsealed or copied instance raises ``TypeError``), and
``Answers.replace`` goes through ``parse`` again. So the plan (``resolve``, ``make_plan``,
``apply_answers`` accept only ``Answers``) is never built from unvalidated values.
Checks that need the machine (model file, cores, memory) live in ``appliance.plan.resolve``.
Unanswered keys take the base's values (default: the documented defaults below).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from appliance.answers import checks
from appliance.answers.limits import LimitsAnswers, check_limits
from appliance.answers.roles import LBAnswers, check_role
from appliance.answers.sections import (
    ACME_SHORTCUTS,
    ENGINES,
    MAX_CONTEXT,
    MAX_PARALLEL,
    MIN_CONTEXT,
    TLS_MODES,
    ListenAnswers,
    ModelAnswers,
    TLSAnswers,
)
from appliance.errors import AnswersError, FieldError

__all__ = ["ACME_SHORTCUTS", "ENGINES", "MAX_CONTEXT", "MAX_PARALLEL", "MIN_CONTEXT", "TLS_MODES",
           "VERSION", "Answers", "LBAnswers", "ListenAnswers", "ModelAnswers", "TLSAnswers",
           "Threads", "defaults", "load_yaml", "parse"]

VERSION = 1

Threads = int | Literal["auto"]


class _Seal:
    """Made by ``parse`` for exactly one :class:`Answers`; spent when that instance is built,
    so ``dataclasses.replace`` (which copies it) cannot make a second, unchecked one."""

    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent = False


@dataclass(frozen=True)
class Answers:
    """Answers that passed the schema. Only :func:`parse` makes them."""

    version: int
    engine: str
    model: ModelAnswers
    threads: Threads
    parallel: int
    api_key: str
    tls: TLSAnswers
    listen: ListenAnswers
    role: str = "standalone"
    """standalone, backend or lb (``answers.roles``)."""
    lb: LBAnswers | None = None
    """Only with role lb."""
    limits: LimitsAnswers = field(default_factory=LimitsAnswers)
    """Per-request limits (``answers.limits``, the request guard)."""
    _seal: _Seal = field(repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self._seal, _Seal) or self._seal.spent:
            raise TypeError("Answers are made only by appliance.answers.schema.parse; "
                            "use answers.replace(...), which validates again")
        self._seal.spent = True

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name != "_seal"}

    def to_yaml(self, redact_key: bool = True) -> str:
        data = self.to_dict()
        if data["lb"] is None:
            del data["lb"]
        if redact_key and data["api_key"] not in ("keep", "rotate"):
            data["api_key"] = "keep"  # never write an explicit key into a replayable file
        return "# slm-appliance answers (schema version 1)\n" + yaml.safe_dump(
            data, sort_keys=False
        )

    def replace(self, source: str = "answers", /, **changes: Any) -> Answers:
        """These answers with some values changed, through the gate again (AnswersError).
        Sections may be given as mappings or as section objects."""
        return parse({k: _plain(v) for k, v in changes.items()}, source, self)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


SECTIONS: dict[str, type] = {"model": ModelAnswers, "tls": TLSAnswers, "listen": ListenAnswers}
TOP_KEYS = ("version", "engine", "model", "threads", "parallel", "api_key", "tls", "listen",
            "role", "lb", "limits")
_DEFAULTS: dict[str, Any] = {"version": VERSION, "engine": "llama-server", "threads": "auto",
                             "parallel": 1, "api_key": "keep", "role": "standalone"}


def defaults() -> Answers:
    """The documented defaults (an empty answers file)."""
    return parse({}, "defaults")


def load_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text into a mapping, or raise AnswersError (malformed, empty, not a mapping)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise AnswersError(
            [FieldError("(file)", f"malformed YAML{where}: {problem}", "fix the YAML syntax")],
            source,
        ) from None
    if data is None:
        raise AnswersError(
            [FieldError("(file)", "the file is empty", "write at least 'version: 1'")], source
        )
    if not isinstance(data, dict):
        raise AnswersError(
            [FieldError("(file)", f"expected a mapping of keys, got {type(data).__name__}",
                        "start with 'version: 1' and key: value lines")],
            source,
        )
    return data


def parse(data: Mapping[str, Any], source: str = "answers", base: Answers | None = None) -> Answers:
    """Validate a mapping against schema v1, filling unanswered keys from ``base``; all errors
    at once. Whole numbers may come as text (a form field's ``"4096"``), empty optional text
    means "not set"; the domain is normalised to lower case without a trailing dot."""
    errors: list[FieldError] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(FieldError(str(key), "unknown key", checks.suggest(str(key), TOP_KEYS)))

    def top(key: str) -> Any:
        return data[key] if key in data else (
            getattr(base, key) if base is not None else _DEFAULTS[key])

    version = top("version")
    if version != VERSION:
        errors.append(FieldError("version", f"unsupported schema version {version!r}",
                                 f"use version: {VERSION}"))
    engine = top("engine")
    if engine not in ENGINES:
        errors.append(FieldError("engine", f"unknown engine {engine!r}",
                                 f"use one of: {', '.join(ENGINES)}"))
    sections: dict[str, Any] = {}
    for name, kind in SECTIONS.items():
        current = getattr(base, name) if base is not None else kind()
        sections[name] = checks.merge_section(errors, name, data.get(name), current)
    raw_model = data.get("model") if isinstance(data.get("model"), dict) else {}
    model = checks.check_model(errors, sections["model"], raw_model or {})

    threads = top("threads")
    if threads != "auto":
        threads = checks.whole(errors, "threads", threads, 1, 1024,
                               "use 'auto' or a whole number of threads >= 1")
    parallel = checks.whole(errors, "parallel", top("parallel"), 1, MAX_PARALLEL,
                            f"use 1-{MAX_PARALLEL} concurrent request slots")
    checks.check_slots(errors, model.context_size, parallel)
    api_key = checks.check_api_key(errors, top("api_key"))
    tls = checks.check_tls(errors, sections["tls"])
    checks.check_listen(errors, sections["listen"])
    role, lb = check_role(errors, data, *((base.role, base.lb) if base is not None
                                          else (_DEFAULTS["role"], None)))
    limits = check_limits(errors, data, base.limits if base is not None else None)
    if errors:
        raise AnswersError(errors, source)
    assert parallel is not None and threads is not None and api_key is not None
    return Answers(version=VERSION, engine=str(engine), model=model, threads=threads,
                   parallel=parallel, api_key=api_key, tls=tls, listen=sections["listen"],
                   role=role, lb=lb, limits=limits, _seal=_Seal())
