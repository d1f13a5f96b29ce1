"""Property: drafts built from the screens' own widget values (in range, out of range,
malformed) either pass everything the wizard checks and are then accepted by
``wizard --validate``, or are refused with every error naming a field a screen shows.

Drafts are built by the same pure functions the screens call (wizard/screens/drafts.py), over
the applied answers of the real sandbox, and checked by the same gate and machine checks the
wizard runs before Review (appliance resolve)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.answers.catalog import load_catalog
from appliance.errors import AnswersError
from appliance.host.facts import detect
from appliance.host.paths import Layout
from appliance.host.site import load_site
from appliance.plan.resolve import resolve
from tests.conftest import Stack
from wizard.cli import main as wizard_main
from wizard.screens.drafts import key_values, model_values, speed_values, tls_values
from wizard.screens.fields import gate, locate, merge

pytestmark = pytest.mark.stack

NUMBERS = st.one_of(st.integers(-5, 140000).map(str), st.sampled_from(
    ["", " ", "0", "1", "2", "16", "17", "255", "256", "4096", "8192", "99999999", "-1",
     "1.5", "4k", "auto", "abc", "0x10", " 512 ", "１２"]))
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=24)


@st.composite
def widget_values(draw: Any) -> dict[str, Any]:
    models = sorted(load_catalog())
    return {
        "selected": draw(st.sampled_from(models)),
        "path": draw(st.one_of(st.just(""), st.sampled_from(
            ["/opt/slm-appliance/models/SmolLM2-135M-Instruct.Q4_1.gguf", "relative.gguf",
             "/nope/missing.gguf", "  "]), TEXT)),
        "context": draw(NUMBERS),
        "threads": draw(st.one_of(NUMBERS, st.just("auto"))),
        "parallel": draw(NUMBERS),
        "letsencrypt": draw(st.booleans()),
        "domain": draw(st.one_of(st.sampled_from(
            ["", "llm.test", "LLM.Example.COM", "*.example.com", "bad_domain", "a..b",
             "llm.invalid."]), TEXT)),
        "email": draw(st.one_of(st.sampled_from(
            ["", "ops@example.com", "ops-at-example", "a@b", "x y@z.com"]), TEXT)),
        "skip": draw(st.booleans()),
        "rotate": draw(st.booleans()),
    }


def build(applied: dict[str, Any], w: dict[str, Any]) -> dict[str, Any]:
    """The draft exactly as the screens send it, screen after screen."""
    draft = applied
    for values in (model_values(w["selected"], w["path"], w["context"], {}),
                   speed_values(w["threads"], w["parallel"]),
                   tls_values(w["letsencrypt"], w["domain"], w["email"], w["skip"]),
                   key_values(w["rotate"], applied.get("api_key"))):
        draft = merge(draft, values)
    return draft


@pytest.fixture(scope="module")
def applied(stack: Stack) -> dict[str, Any]:
    from appliance.session import Session

    site = load_site(stack.layout)
    return Session(stack.layout, site, detect(), lambda emit: None).answers().to_dict()  # type: ignore[arg-type,return-value]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=widget_values())
def test_what_the_wizard_would_apply_validates(stack: Stack, applied: dict[str, Any],
                                               tmp_path: Path, w: dict[str, Any]) -> None:
    layout = Layout(stack.root)
    answers, errors = gate(build(applied, w))
    if answers is not None:
        try:
            resolve(answers, detect(), load_site(layout), layout, "wizard")
        except AnswersError as exc:
            errors = list(exc.errors)
            answers = None
    if answers is None:
        assert errors
        for e in errors:  # every refusal names a field that a screen shows
            assert locate(e.field)[0] in ("model", "performance", "tls", "key"), e
        return
    path = tmp_path / "answers.applied.yaml"
    path.write_text(answers.to_yaml())
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = wizard_main(["--root", str(stack.root), "--validate", str(path)])
    assert code == 0, f"{answers}\n{out.getvalue()}"
