"""The wizard's pure parts: where fields live, what numbers and snippets say."""

from __future__ import annotations

import shlex

import yaml

from appliance.clients import Access, client_snippets, exit_summary
from appliance.errors import FieldError
from appliance.perf.bench import BenchResult, Sample
from wizard.screens.base import step_bar
from wizard.screens.fields import changed_fields, first_step, locate, merge, on_step, scalar
from wizard.screens.speed_text import bench_summary, busy_warning, reading, slot_hint
from wizard.screens.tls import public_addresses

ACCESS = Access("https://10.0.0.5/v1", "phi-3-mini-4k-instruct-q4", "k" * 43,
                "/etc/slm-appliance/api_key", "/etc/slm-appliance/tls/selfsigned.crt",
                "10.0.0.5")


def test_every_field_has_a_screen() -> None:
    assert locate("model.context_size") == ("model", "context")
    assert locate("tls.email") == ("tls", "email")
    assert locate("tls.acme_directory") == ("tls", "mode")
    assert locate("listen.https") == ("status", "status")
    errors = [FieldError("parallel", "x"), FieldError("tls.domain", "y")]
    assert [e.field for e in on_step("tls", errors)] == ["tls.domain"]
    assert first_step(errors, ("status", "model", "performance", "tls")) == "performance"


def test_text_boxes_become_raw_answers_without_judging_them() -> None:
    assert scalar(" 4096 ") == 4096 and scalar("0") == 0 and scalar("-1") == -1
    assert scalar("auto") == "auto" and scalar("4k") == "4k" and scalar("") == ""
    assert merge({"model": {"id": "a", "context_size": 1}, "threads": 2},
                 {"model": {"context_size": 9}}) == {"model": {"id": "a", "context_size": 9},
                                                     "threads": 2}


def test_changes_read_as_words() -> None:
    before = {"model": {"id": "smollm2"}, "threads": "auto", "parallel": 1}
    after = {"model": {"id": "gemma3"}, "threads": 1, "parallel": 1}
    assert changed_fields(before, after) == ["Model smollm2 -> gemma3", "Threads auto -> 1"]


def test_step_bar_is_compact_under_70_columns() -> None:
    wide = step_bar("tls", 80)
    assert "1 Status" in wide and "▸4 TLS" in wide
    assert step_bar("tls", 60) == "[b]Step 4 of 8: TLS[/]"


def test_speed_reads_plainly() -> None:
    assert reading(12.0).startswith("~9 words/s")
    samples = [Sample(100.0, 20, 200.0, 64, t, t, "engine") for t in (10.0, 12.0, 11.0)]
    text = bench_summary(BenchResult("m", 1, samples))
    assert "11.0 tok/s[/] generation, median of 3 runs (range 10.0-12.0) on 1 thread:" in text
    assert busy_warning(4.0, 2) is not None and "load 4.0 on 2 CPUs" in str(busy_warning(4, 2))
    assert busy_warning(0.3, 2) is None
    assert slot_hint(2048, 2) == "2 slots x 1024 tokens each: up to 2 requests at once"
    assert slot_hint(4096, 1) == "1 slot x 4096 tokens: up to 1 request at once"
    assert slot_hint(4096, "x") == ""


def test_only_routable_addresses_are_offered_for_dns() -> None:
    assert public_addresses(["127.0.0.1", "::1", "10.0.0.5", "fe80::1", "2001:db8::5"]) == [
        "10.0.0.5", "2001:db8::5"]


def test_snippets_are_complete_and_in_each_clients_format() -> None:
    s = client_snippets(ACCESS)
    curl = s["curl"]
    assert "\n" not in curl and '"max_tokens":64' in curl and ACCESS.key in curl
    argv = shlex.split(curl)
    assert argv[:3] == ["curl", "--cacert", ACCESS.ca_file]
    conf = yaml.safe_load(s["Continue"])
    assert {"name", "version", "schema", "models"} <= conf.keys() and conf["schema"] == "v1"
    model = conf["models"][0]
    assert model["provider"] == "openai" and model["apiBase"] == ACCESS.endpoint
    assert model["requestOptions"]["caBundlePath"].endswith("slm-appliance-ca.crt")
    assert "aider --model openai/phi-3-mini-4k-instruct-q4" in s["aider"]
    assert "OpenAI Compatible" in s["Cline"] and "NODE_EXTRA_CA_CERTS" in s["Cline"]
    assert "scp root@10.0.0.5:/etc/slm-appliance/tls/selfsigned.crt" in s["Laptop"]
    compile(s["OpenAI Python"], "snippet", "exec")
    public = client_snippets(Access(**{**ACCESS.__dict__, "ca_file": None}))
    assert "cacert" not in public["curl"] and "requestOptions" not in public["Continue"]


def test_exit_summary_names_endpoint_key_and_next_steps_without_the_key() -> None:
    text = exit_summary(ACCESS, True, "/etc/slm-appliance/client-setup.txt")
    assert "Endpoint : https://10.0.0.5/v1" in text and "/etc/slm-appliance/api_key" in text
    assert "Next steps" in text and ACCESS.key not in text
