"""The ``limits`` section of the answers: what one request may ask of the engine.

A separate block of the one gate (``schema.parse`` calls :func:`check_limits`); the request
guard in nginx (``plan/render/guard.py``) and llama-server's ``--n-predict`` enforce it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.answers import checks
from appliance.errors import FieldError

MAX_TOKENS_CAP = 131072


@dataclass(frozen=True)
class LimitsAnswers:
    max_tokens: int = 2048
    """Most tokens one request may generate: a larger ``max_tokens`` is refused (400 naming the
    limit); llama-server also uses it when a request names none (``--n-predict``)."""


def check_limits(errors: list[FieldError], data: Mapping[str, Any],
                 base: LimitsAnswers | None) -> LimitsAnswers:
    """The answered ``limits`` over the base's (or the defaults), checked."""
    current = checks.merge_section(errors, "limits", data.get("limits"), base or LimitsAnswers())
    cap = checks.whole(errors, "limits.max_tokens", current.max_tokens, 1, MAX_TOKENS_CAP,
                       "use a whole number of tokens per request, e.g. 2048")
    return LimitsAnswers(max_tokens=cap or LimitsAnswers.max_tokens)
