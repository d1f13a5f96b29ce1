"""The request guard's rendering and the limits block of the answers (the JS runs in the
stack tests, tests/stack/test_hardening.py, against real nginx + njs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from appliance.answers.schema import parse
from appliance.errors import AnswersError
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.engines import LlamaServer
from appliance.plan.render.guard import GuardLimits, render_guard
from appliance.plan.render.model_gate import gate_js
from tests.unit.test_render import resolved


def test_limits_are_written_into_the_guard() -> None:
    js = render_guard(GuardLimits(max_tokens=512, max_choices=3))
    limits = json.loads(re.search(r"var LIMITS = (\{.*\});", js).group(1))  # type: ignore[union-attr]
    assert limits == {"maxDepth": 32, "maxLogprobs": 20, "maxTokens": 512, "maxChoices": 3}
    for field in ("n_probs", "top_logprobs", "logprobs", "n", "n_cmpl", "max_tokens",
                  "max_completion_tokens", "n_predict"):
        assert f'"{field}"' in js


def test_the_model_gate_parses_once_through_the_guard() -> None:
    js = gate_js(render_guard(GuardLimits()))
    assert js.count("JSON.parse(") == 1 and "var doc = guard(r);" in js
    assert "%(guard)s" not in js


def test_limits_block_defaults_and_errors() -> None:
    assert parse({}).limits.max_tokens == 2048
    assert parse({"limits": {"max_tokens": "300"}}).limits.max_tokens == 300
    with pytest.raises(AnswersError) as e:
        parse({"limits": {"max_tokens": 0, "n_probs": 5}})
    fields = {err.field for err in e.value.errors}
    assert fields == {"limits.max_tokens", "limits.n_probs"}


def test_llama_server_defaults_to_the_cap_when_a_request_names_none() -> None:
    r = resolved(engine="llama-server", limits={"max_tokens": 300})
    argv = LlamaServer().argv(r, Layout(Path("/")), Site())
    assert argv[argv.index("--n-predict") + 1] == "300"
