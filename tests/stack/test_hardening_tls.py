"""The served TLS profile and certificate, as real clients see them (issue 14).

openssl s_client probes the protocol and suites; curl, Python ``ssl``, the OpenAI SDK and Node
(when installed) verify the served certificate with the CA file the appliance points them to.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess

import pytest
from cryptography import x509

from appliance.tls.selfsigned import is_ca
from tests.conftest import SMOLLM, Stack

pytestmark = pytest.mark.stack


def _s_client(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{stack.port_base + 443}",
                           *args], input="", capture_output=True, text=True, timeout=30)


def _handshake_ok(p: subprocess.CompletedProcess[str]) -> bool:
    return "Cipher is (NONE)" not in p.stdout and "New, TLSv" in p.stdout


def test_no_old_protocols_and_no_weak_suites(stack: Stack) -> None:
    assert _handshake_ok(_s_client(stack, "-tls1_3"))
    assert _handshake_ok(_s_client(stack, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"))
    for proto in ("-tls1", "-tls1_1"):
        assert not _handshake_ok(_s_client(stack, proto)), proto
    for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                  "ECDHE-ECDSA-AES128-CCM8", "ECDHE-ECDSA-AES256-CCM",
                  "ECDHE-ECDSA-ARIA128-GCM-SHA256", "ECDHE-ECDSA-CAMELLIA256-SHA384"):
        assert not _handshake_ok(_s_client(stack, "-tls1_2", "-cipher", suite)), suite
    for suite in ("TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"):
        assert not _handshake_ok(_s_client(stack, "-tls1_3", "-ciphersuites", suite)), suite


def test_no_session_tickets(stack: Stack) -> None:
    out = _s_client(stack, "-tls1_2").stdout
    assert "TLS session ticket:" not in out


def test_served_certificate_cannot_sign_for_other_names(stack: Stack) -> None:
    pem = ssl.get_server_certificate(("127.0.0.1", stack.port_base + 443))
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert not is_ca(cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with open(stack.ca) as f:  # the file clients are told to trust
        assert f.read().strip() == pem.strip()


def test_clients_verify_it_with_the_ca_file(stack: Stack) -> None:
    url = f"{stack.https}/v1/models"
    curl = subprocess.run(["curl", "-sS", "--fail", "--cacert", stack.ca, url,
                           "-H", f"Authorization: Bearer {stack.key()}"],
                          capture_output=True, text=True, timeout=30)
    assert curl.returncode == 0 and SMOLLM in curl.stdout, curl.stderr

    strict = ssl.create_default_context(cafile=stack.ca)
    strict.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_connection(("127.0.0.1", stack.port_base + 443)) as raw, \
            strict.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")

    import httpx
    import openai

    with openai.OpenAI(base_url=f"{stack.https}/v1", api_key=stack.key(),
                       http_client=httpx.Client(verify=ssl.create_default_context(
                           cafile=stack.ca))) as sdk:
        assert [m.id for m in sdk.models.list()] == [SMOLLM]
    with openai.OpenAI(base_url=f"{stack.https}/v1", api_key=stack.key(),
                       max_retries=0) as untrusted, pytest.raises(openai.APIConnectionError):
        untrusted.models.list()  # without the CA file: refused, never silently trusted

    node = shutil.which("node")
    if node:
        script = ("const https=require('https'),fs=require('fs');"
                  "https.get({host:'127.0.0.1',port:process.argv[1],path:'/health',"
                  "ca:fs.readFileSync(process.argv[2]),agent:false},"
                  "r=>{console.log(r.statusCode);process.exit(0)})"
                  ".on('error',e=>{console.log(e.code);process.exit(1)})")
        p = subprocess.run([node, "-e", script, str(stack.port_base + 443), stack.ca],
                           capture_output=True, text=True, timeout=30)
        assert p.stdout.strip() == "200", p.stdout + p.stderr
