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
    # Made while the clock ran ahead (e.g. before NTP synced): replaced once the clock is right.
    assert tls.needs_new(pair, names, NOW - dt.timedelta(days=1))
    assert not tls.needs_new(pair, names, NOW - dt.timedelta(minutes=4))
    other = tls.make_selfsigned(names, NOW)
    assert tls.needs_new(tls.CertPair(pair.cert_pem, other.key_pem), names, NOW)


def test_self_signed_is_p256_and_a_leaf_that_cannot_sign() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    pair = tls.make_selfsigned(["vm1", "10.0.0.5"], NOW)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not tls.is_ca(cert)
    assert tls.cert_names(pair.cert_pem) == {"vm1", "10.0.0.5"}


def test_a_ca_certificate_from_an_older_version_is_replaced_once() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    names = ["vm1", "10.0.0.5"]
    leaf = tls.make_selfsigned(names, NOW)
    assert not tls.needs_new(leaf, names, NOW)
    key = serialization.load_pem_private_key(leaf.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    old = x509.load_pem_x509_certificate(leaf.cert_pem)
    builder = x509.CertificateBuilder(
        issuer_name=old.issuer, subject_name=old.subject, public_key=old.public_key(),
        serial_number=old.serial_number, not_valid_before=old.not_valid_before_utc,
        not_valid_after=old.not_valid_after_utc)
    builder = builder.add_extension(
        old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, False)
    ca = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True).sign(
        key, hashes.SHA256())
    assert tls.needs_new(tls.CertPair(ca.public_bytes(serialization.Encoding.PEM),
                                      leaf.key_pem), names, NOW)


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
