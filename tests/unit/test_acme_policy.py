from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.tls import acme_policy as p

NOW = dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC)
DIRECTORY = "https://acme.test/dir"


def lineage(days: float, names: tuple[str, ...] = ("llm.example.com",), start: dt.datetime = NOW,
            other_key: bool = False) -> p.Lineage:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    signing = ec.generate_private_key(ec.SECP256R1()) if other_key else key
    pem = signing.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return p.Lineage(cert.public_bytes(serialization.Encoding.PEM), pem, DIRECTORY)


def test_backoff_is_1m_10m_100m_then_daily() -> None:
    steps = [p.backoff(n) for n in range(6)]
    assert steps == [dt.timedelta(0), dt.timedelta(minutes=1), dt.timedelta(minutes=10),
                     dt.timedelta(minutes=100), dt.timedelta(days=1), dt.timedelta(days=1)]
    later = NOW + dt.timedelta(hours=5)
    assert p.next_attempt(NOW, 1, later) == later
    assert p.next_attempt(NOW, 2, NOW) == NOW + dt.timedelta(minutes=10)


@pytest.mark.parametrize(("value", "expected"), [
    ("120", NOW + dt.timedelta(seconds=120)),
    ("Wed, 03 Mar 2027 10:00:00 GMT", dt.datetime(2027, 3, 3, 10, tzinfo=dt.UTC)),
    ("too many certificates (5) already issued: retry after 2027-03-04T05:06:07Z",
     dt.datetime(2027, 3, 4, 5, 6, 7, tzinfo=dt.UTC)),
    ("soon", None), (None, None)])
def test_retry_after(value: str | None, expected: dt.datetime | None) -> None:
    assert p.parse_retry_after(value, NOW) == expected


def test_renewal_at_a_third_left_or_half_for_short_certs() -> None:
    assert p.renewal_time(NOW, NOW + dt.timedelta(days=90)) == NOW + dt.timedelta(days=60)
    assert p.renewal_time(NOW, NOW + dt.timedelta(days=45)) == NOW + dt.timedelta(days=30)
    assert p.renewal_time(NOW, NOW + dt.timedelta(hours=160)) == NOW + dt.timedelta(hours=80)


def test_reuse_same_names_same_ca_until_due() -> None:
    lin = lineage(90)
    assert p.usable(lin, "llm.example.com", DIRECTORY, NOW)
    assert not p.needs_order(lin, "llm.example.com", DIRECTORY, NOW + dt.timedelta(days=59))
    assert p.needs_order(lin, "llm.example.com", DIRECTORY, NOW + dt.timedelta(days=61))
    assert p.needs_order(lin, "other.example.com", DIRECTORY, NOW)  # names changed
    assert p.needs_order(lin, "llm.example.com", "https://staging/dir", NOW)  # other CA
    assert p.needs_order(None, "llm.example.com", DIRECTORY, NOW)
    assert not p.usable(lineage(90, other_key=True), "llm.example.com", DIRECTORY, NOW)
    assert not p.usable(lin, "llm.example.com", DIRECTORY, NOW + dt.timedelta(days=91))


def test_ari_window_overrides_the_lifetime_rule() -> None:
    lin = lineage(90)
    early = NOW + dt.timedelta(days=10)
    assert p.needs_order(lin, "llm.example.com", DIRECTORY, NOW + dt.timedelta(days=11), early)
    late = NOW + dt.timedelta(days=80)
    assert not p.needs_order(lin, "llm.example.com", DIRECTORY, NOW + dt.timedelta(days=70),
                             late)


@pytest.mark.parametrize(("code", "detail", "kind", "words"), [
    ("dns", "NXDOMAIN looking up A for llm.example.com", "dns", "A/AAAA record"),
    ("connection", "dial tcp 203.0.113.5:80: connect: connection refused", "connection",
     "open port 80"),
    ("unauthorized", "Invalid response from http://llm.example.com/.well-known/...: 404",
     "unauthorized", "wrong answer or a 404"),
    ("rateLimited", "too many certificates: retry after 2027-03-08T00:00:00Z", "rate-limited",
     "retry after 2027-03-08 00:00"),
    ("badNonce", "JWS has an invalid anti-replay nonce", "bad-nonce", "transient"),
    ("serverInternal", "boom", "ca-down", "internal error"),
    ("rejectedIdentifier", "policy forbids", "ca-error", "refused")])
def test_problems_become_operator_messages(code: str, detail: str, kind: str,
                                           words: str) -> None:
    failure = p.classify_problem(code, detail, "llm.example.com", NOW)
    assert failure.kind == kind and words in failure.message
    if kind == "rate-limited":
        assert failure.retry_after == dt.datetime(2027, 3, 8, tzinfo=dt.UTC)
