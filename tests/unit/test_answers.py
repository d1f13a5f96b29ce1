from __future__ import annotations

import pytest

from appliance.answers.context import PARAMS, answers_from_env
from appliance.answers.hostport import split_hostport
from appliance.answers.schema import ACME_SHORTCUTS, defaults, load_yaml, parse
from appliance.errors import AnswersError


def test_empty_mapping_gives_the_documented_defaults() -> None:
    a = parse({})
    assert a == defaults()
    assert (a.engine, a.model.id, a.model.context_size, a.threads, a.parallel, a.api_key) == (
        "llama-server", "phi-3-mini-4k-instruct-q4", 4096, "auto", 1, "keep")
    assert (a.tls.mode, a.listen.https, a.listen.http, a.listen.engine) == (
        "self-signed", "0.0.0.0:443", "0.0.0.0:80", "127.0.0.1:8080")


def test_partial_answers_keep_the_base() -> None:
    base = parse({"threads": 3, "listen": {"https": "127.0.0.1:8443"}})
    a = parse({"parallel": 2}, base=base)
    assert (a.threads, a.parallel, a.listen.https, a.listen.http) == (3, 2, "127.0.0.1:8443",
                                                                       "0.0.0.0:80")


def test_new_catalog_id_drops_the_base_path_and_a_path_alone_names_itself() -> None:
    base = parse({"model": {"path": "/m/custom.gguf"}})
    assert base.model.id is None and base.model.path == "/m/custom.gguf"
    a = parse({"model": {"id": "gemma3-270m-q4_k_m"}}, base=base)
    assert (a.model.id, a.model.path) == ("gemma3-270m-q4_k_m", None)


def test_staging_shortcut_and_domain_normalised() -> None:
    a = parse({"tls": {"mode": "letsencrypt", "domain": "LLM.Example.COM.",
                       "acme_directory": "staging"}})
    assert a.tls.domain == "llm.example.com"
    assert a.tls.acme_directory == ACME_SHORTCUTS["staging"]


@pytest.mark.parametrize(("value", "expected"), [
    ("0.0.0.0:443", ("0.0.0.0", 443)), ("[::]:443", ("::", 443)), ("[::1]:8", ("::1", 8))])
def test_hostport(value: str, expected: tuple[str, int]) -> None:
    assert split_hostport(value) == expected


def test_yaml_errors_carry_the_position() -> None:
    with pytest.raises(AnswersError) as e:
        load_yaml("a: [1,\n", "f.yaml")
    assert "line 2" in str(e.value) and e.value.exit_code == 2


def test_context_variables_map_to_the_same_answers() -> None:
    env = {"ONEAPP_SLM_MODEL_ID": "smollm2-135m-instruct-q4_1", "ONEAPP_SLM_MODEL_CONTEXT": "2048",
           "ONEAPP_SLM_ENGINE_THREADS": "2", "ONEAPP_SLM_TLS_DOMAIN": "",
           "ONEAPP_SLM_LISTEN_HTTPS": "127.0.0.1:9443", "HOME": "/root"}
    a = answers_from_env(env, defaults())
    assert a == parse({"model": {"id": "smollm2-135m-instruct-q4_1", "context_size": 2048},
                       "threads": 2, "listen": {"https": "127.0.0.1:9443"}})


def test_context_errors_name_the_variable() -> None:
    env = {"ONEAPP_SLM_ENGINE_THREADS": "lots", "ONEAPP_SLM_MODEL_CONTXT": "1",
           "ONEAPP_SLM_ENGINE_PARALLEL": "99"}
    with pytest.raises(AnswersError) as e:
        answers_from_env(env, defaults())
    text = str(e.value)
    assert "ONEAPP_SLM_ENGINE_THREADS (threads): 'lots' is not a whole number" in text
    assert "ONEAPP_SLM_MODEL_CONTXT: unknown context variable" in text
    assert "ONEAPP_SLM_ENGINE_PARALLEL (parallel): 99 is out of range" in text


def test_context_names_have_four_segments() -> None:
    assert all(len(name.split("_")) == 4 for name in PARAMS)


def test_explicit_key_never_written_to_replayable_answers() -> None:
    a = parse({"api_key": "A" * 40})
    assert "A" * 40 not in a.to_yaml()
