"""Pure policies: certificate reuse, key rotation, facts parsing, diff redaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from appliance.answers.catalog import load_catalog
from appliance.answers.schema import parse
from appliance.apply.changes import Change, describe
from appliance.host.facts import Facts, _cpuinfo
from appliance.host.files import FileSpec, atomic_write
from appliance.host.paths import Layout
from appliance.plan.secrets import gather_secrets
from appliance.tls import selfsigned as tls
from tests.unit.test_render import resolved

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
FACTS = Facts(logical_cpus=4, physical_cores=2, cpu_flags=frozenset({"avx2"}),
              mem_total=8 << 30, hostname="vm1", addresses=("127.0.0.1", "::1", "10.0.0.5"))


def test_certificate_reused_until_names_change_or_expiry_nears() -> None:
    names = ["vm1", "localhost", "127.0.0.1", "::1"]
    pair = tls.make_selfsigned(names, NOW)
    assert not tls.needs_new(pair, names, NOW)
    assert not tls.needs_new(pair, list(reversed(names)), NOW + dt.timedelta(days=3000))
    assert tls.needs_new(pair, [*names, "10.0.0.6"], NOW)
    assert tls.needs_new(pair, names, NOW + dt.timedelta(days=3640))
    assert tls.needs_new(None, names, NOW)
    other = tls.make_selfsigned(names, NOW)
    assert tls.needs_new(tls.CertPair(pair.cert_pem, other.key_pem), names, NOW)


def test_self_signed_is_p256_and_its_own_anchor() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    pair = tls.make_selfsigned(["vm1", "10.0.0.5"], NOW)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert tls.cert_names(pair.cert_pem) == {"vm1", "10.0.0.5"}


def test_api_key_keep_rotate_explicit(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    r = resolved(engine="llama-server")
    first = gather_secrets(r, FACTS, layout, {}, NOW)
    assert len(first.api_key) >= 43
    atomic_write(layout.map(layout.api_key_file), first.api_key.encode(), 0o600)
    assert gather_secrets(r, FACTS, layout, {}, NOW).api_key == first.api_key
    rot = resolved(engine="llama-server", api_key="rotate")
    rotated = gather_secrets(rot, FACTS, layout, {"api_key_answer": "keep"}, NOW).api_key
    assert rotated != first.api_key
    again = gather_secrets(rot, FACTS, layout, {"api_key_answer": "rotate"}, NOW).api_key
    assert again == first.api_key  # same answers twice: one rotation
    explicit = resolved(engine="llama-server", api_key="E" * 40)
    assert gather_secrets(explicit, FACTS, layout, {}, NOW).api_key == "E" * 40


def test_cpuinfo_counts_physical_cores() -> None:
    block = ("processor : {n}\nphysical id : 0\ncore id : {c}\nflags : fpu avx avx2\n"
             "model name : X\n")
    text = "\n".join(block.format(n=n, c=n // 2) for n in range(4))
    cores, flags, model = _cpuinfo(text)
    assert (cores, "avx2" in flags, model) == (2, True, "X")
    assert FACTS.auto_threads() == 2


def test_memory_estimate_for_phi3_at_4k() -> None:
    phi = load_catalog()["phi-3-mini-4k-instruct-q4"]
    gib = phi.memory_estimate(4096) / (1 << 30)
    assert 3.9 < gib < 4.4  # 2.23 GiB weights + 1.5 GiB KV + overhead


def test_diff_never_shows_secrets() -> None:
    spec = FileSpec("/etc/slm-appliance/api_key", b"new-secret\n", 0o600, secret=True)
    text = describe([Change(spec, "update", b"old-secret\n")])
    assert "secret" in text and "new-secret" not in text and "old-secret" not in text
    plain = FileSpec("/etc/nginx/nginx.conf", b"a\nb\n")
    assert "+b" in describe([Change(plain, "update", b"a\n")])


def test_answers_yaml_round_trip() -> None:
    from appliance.answers.schema import load_yaml

    a = parse({"threads": 2, "tls": {"domain": "llm.example.com"}})
    assert parse(load_yaml(a.to_yaml(), "x")) == a
