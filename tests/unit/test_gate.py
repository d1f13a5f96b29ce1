"""The one gate: Answers exist only through parse, and every stored file is read through it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from appliance.answers.schema import Answers, ModelAnswers, defaults, load_yaml, parse
from appliance.answers.stored import REPAIR_HINT, applied_answers, repaired_answers
from appliance.errors import AnswersError
from appliance.host.paths import Layout
from appliance.host.site import Site

SITE = Site(defaults={"parallel": 2, "model": {"context_size": 2048}})


def _fields(exc: pytest.ExceptionInfo[AnswersError]) -> list[str]:
    return [e.field for e in exc.value.errors]


def test_answers_cannot_be_built_around_parse() -> None:
    a = defaults()
    with pytest.raises(TypeError, match="_seal"):  # mypy: missing argument
        Answers(1, "llama-server", ModelAnswers(context_size=0), "auto", 1, "keep", a.tls,
                a.listen)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="made only by"):  # mypy: wrong type
        Answers(1, "llama-server", ModelAnswers(), "auto", 1, "keep", a.tls, a.listen,
                _seal=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="made only by"):
        dataclasses.replace(a, parallel=0)


def test_replace_goes_through_the_gate_again() -> None:
    a = defaults()
    with pytest.raises(AnswersError) as e:
        a.replace(parallel=0)
    assert _fields(e) == ["parallel"]
    with pytest.raises(AnswersError) as e:
        a.replace(model=dataclasses.replace(a.model, context_size=0))
    assert _fields(e) == ["model.context_size"]
    assert a.replace(threads=2).threads == 2


@pytest.mark.parametrize(("raw", "field"), [
    ({"model": {"context_size": 0}}, "model.context_size"),
    ({"model": {"context_size": "0"}}, "model.context_size"),
    ({"model": {"context_size": ""}}, "model.context_size"),
    ({"model": {"context_size": "4k"}}, "model.context_size"),
    ({"parallel": 0}, "parallel"),
    ({"parallel": "0"}, "parallel"),
    ({"threads": "0"}, "threads"),
    ({"tls": {"email": "operator.example.com"}}, "tls.email"),
    ({"tls": {"domain": "LLM..Example.COM"}}, "tls.domain"),
])
def test_what_the_wizard_found_wrong_is_refused_naming_the_field(raw: dict[str, object],
                                                                 field: str) -> None:
    with pytest.raises(AnswersError) as e:
        parse(raw, "wizard")
    assert _fields(e) == [field]
    assert all(err.fix for err in e.value.errors)


def test_form_text_is_accepted_where_it_is_unambiguous() -> None:
    a = parse({"model": {"context_size": " 2048 "}, "parallel": "2", "threads": "3",
               "tls": {"email": "", "domain": "LLM.Example.COM."}}, "wizard")
    assert (a.model.context_size, a.parallel, a.threads) == (2048, 2, 3)
    assert a.tls.email is None
    assert a.tls.domain == "llm.example.com"  # the certificate folder is named after it


def test_what_is_written_reads_back_the_same() -> None:
    a = parse({"threads": 2, "parallel": 4, "tls": {"domain": "Llm.Example.com",
                                                    "email": "ops@example.com"}})
    assert parse(load_yaml(a.to_yaml(), "x")) == a


def _stored(tmp_path: Path, text: str) -> Layout:
    layout = Layout(tmp_path)
    path = layout.map(layout.applied_answers)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return layout


def test_a_hand_broken_stored_file_is_refused_naming_the_field_and_the_fix(
        tmp_path: Path) -> None:
    layout = _stored(tmp_path, "threads: 2\nmodel:\n  context_size: 0\n")
    with pytest.raises(AnswersError) as e:
        applied_answers(layout, SITE)
    assert _fields(e) == ["model.context_size"]
    text = str(e.value)
    assert text.startswith(str(layout.map(layout.applied_answers)))
    assert "(fix: use e.g. 4096" in text and REPAIR_HINT in text


def test_the_wizard_starts_from_defaults_merged_with_what_is_valid(tmp_path: Path) -> None:
    layout = _stored(tmp_path, "threads: 2\nparallel: 0\nmodel:\n  context_size: 0\n"
                               "  id: gemma3-270m-q4_k_m\ntls:\n  email: nope\n  typo: 1\n")
    start = repaired_answers(layout, SITE)
    a = start.answers
    assert (a.threads, a.model.id) == (2, "gemma3-270m-q4_k_m")  # valid values kept
    assert (a.parallel, a.model.context_size, a.tls.email) == (2, 2048, None)  # site defaults
    assert sorted(e.field for e in start.problems) == [
        "model.context_size", "parallel", "tls.email", "tls.typo"]


def test_an_unreadable_stored_file_starts_from_the_site_defaults(tmp_path: Path) -> None:
    start = repaired_answers(_stored(tmp_path, "threads: [2\n"), SITE)
    assert start.answers == parse(SITE.defaults or {}) and start.problems[0].field == "(file)"
    assert repaired_answers(Layout(tmp_path / "none"), SITE).problems == []
