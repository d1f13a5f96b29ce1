"""Answers kept in files: an answers file, the site defaults, and the last applied answers.

The one owner of "the last applied answers over the site defaults". Two readings of it:

* :func:`applied_answers` is strict: a stored file that does not pass the schema (edited by
  hand) raises an AnswersError naming the file, the field and the fix, before anything is
  planned, so ``wizard context`` at boot refuses and the running stack keeps serving.
* :func:`repaired_answers` is what the wizard starts from: every valid stored value over the
  site defaults, each invalid one replaced by its default, and the problems it dropped, so
  the operator sees them and applying repairs the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.answers.schema import Answers, defaults, load_yaml, parse
from appliance.errors import AnswersError, FieldError
from appliance.host.paths import Layout
from appliance.host.site import Site

REPAIR_HINT = ("this file records the last applied answers and the running stack keeps serving "
               "them: correct the field in the file, or run 'wizard' and apply (it starts from "
               "the valid values and shows what it replaced)")


def site_defaults(site: Site) -> Answers:
    """What every apply starts from: the site's defaults (a sandbox's loopback ports), else
    the documented ones."""
    return parse(site.defaults, "site defaults") if site.defaults else defaults()


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AnswersError([FieldError("(file)", f"cannot read ({exc.strerror})",
                                       "check the path")], str(path)) from None
    except UnicodeDecodeError:
        raise AnswersError([FieldError("(file)", "not UTF-8 text", "save it as UTF-8")],
                           str(path)) from None


def read_answers(path: str | Path, site: Site) -> Answers:
    """An answers file over the site defaults."""
    return parse(load_yaml(read_text(path), str(path)), str(path), site_defaults(site))


def applied_answers(layout: Layout, site: Site) -> Answers:
    """What runs now: the last applied answers over the site defaults (strict)."""
    base = site_defaults(site)
    path = layout.map(layout.applied_answers)
    if not path.exists():
        return base
    try:
        return parse(load_yaml(read_text(path), str(path)), str(path), base)
    except AnswersError as exc:
        raise AnswersError(exc.errors, exc.source, REPAIR_HINT) from None


@dataclass(frozen=True)
class Repaired:
    """The wizard's starting point: valid answers, and what was dropped from the stored file."""

    answers: Answers
    problems: list[FieldError] = field(default_factory=list)
    source: str = ""


def repaired_answers(layout: Layout, site: Site) -> Repaired:
    """The last applied answers with each invalid value replaced by the site default."""
    base = site_defaults(site)
    path = layout.map(layout.applied_answers)
    if not path.exists():
        return Repaired(base)
    try:
        data = load_yaml(read_text(path), str(path))
    except AnswersError as exc:
        return Repaired(base, exc.errors, str(path))
    answers, problems = salvage(data, base, str(path))
    return Repaired(answers, problems, str(path))


def salvage(data: dict[str, Any], base: Answers, source: str) -> tuple[Answers, list[FieldError]]:
    """Parse ``data`` over ``base``, dropping each key a FieldError names until it passes."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    problems: list[FieldError] = []
    for _ in range(64):  # each round drops at least one key; answers have fewer than 64
        try:
            return parse(data, source, base), problems
        except AnswersError as exc:
            problems += exc.errors
            if not any([_drop(data, e.field) for e in exc.errors]):  # drop every named key
                break
    return base, problems


def _drop(data: dict[str, Any], dotted: str) -> bool:
    section, _, key = dotted.partition(".")
    if key and isinstance(data.get(section), dict) and key in data[section]:
        del data[section][key]
        return True
    if section in data:
        del data[section]
        return True
    return False
