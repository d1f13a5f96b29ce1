"""Self-signed certificate: ECDSA P-256, its own trust anchor, SANs for this VM's names.

Clients are told to trust this very file (``--cacert``, ``SSL_CERT_FILE``, Node's ``ca``), and
an operator may import it into a system trust store. So it must not be able to sign anything:
a leaf with ``CA:FALSE`` and key usage ``digitalSignature`` only, never a CA. The alternative,
a private CA with ``pathlen:0`` and name constraints, was weighed and not taken: it needs a CA
key (kept, it is a standing risk; thrown away, it buys nothing over a leaf) and clients differ
on name constraints over IP addresses, while a self-signed ``CA:FALSE`` leaf given as the trust
anchor verifies in curl, Python ``ssl`` (also with ``VERIFY_X509_STRICT``), httpx / the OpenAI
SDK and Node (tested in ``tests/stack/test_hardening_tls.py``).

Reused as long as it covers the same names, is not a CA and is not near expiry, so clients that
pinned it keep working across reboots and applies; a CA certificate from an older version is
replaced once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""Certificates start this much in the past, so a client whose clock lags a little accepts them."""


@dataclass(frozen=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def cert_names(cert_pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)}


def cert_not_after(cert_pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def needs_new(existing: CertPair | None, names: list[str], now: dt.datetime) -> bool:
    """Policy: a new certificate only when missing, unreadable, a CA, names changed, not yet
    valid (made while the VM's clock was wrong, e.g. before NTP synced: every client would
    refuse it until that time) or near expiry."""
    if existing is None:
        return True
    try:
        cert = x509.load_pem_x509_certificate(existing.cert_pem)
        key = serialization.load_pem_private_key(existing.key_pem, password=None)
    except ValueError:
        return True
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return True
    if is_ca(cert):
        return True
    if cert_names(existing.cert_pem) != {str(ipaddress.ip_address(n)) if _is_ip(n) else n
                                         for n in names}:
        return True
    if cert.not_valid_before_utc > now + CLOCK_SKEW:
        return True
    return cert.not_valid_after_utc - now < RENEW_BEFORE


def is_ca(cert: x509.Certificate) -> bool:
    """True when the certificate could sign others (CA:TRUE or keyCertSign)."""
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return False


def _is_ip(n: str) -> bool:
    try:
        ipaddress.ip_address(n)
    except ValueError:
        return False
    return True


def make_selfsigned(names: list[str], now: dt.datetime) -> CertPair:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "slm-appliance")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
    )


def fingerprint(cert_pem_or_der: bytes) -> str:
    if cert_pem_or_der.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(cert_pem_or_der)
    else:
        cert = x509.load_der_x509_certificate(cert_pem_or_der)
    return cert.fingerprint(hashes.SHA256()).hex()
