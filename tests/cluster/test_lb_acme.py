"""The LB's certificate through the same Let's Encrypt logic: HTTP-01 answered by HAProxy from
the webroot (a small Lua service), against a real ACME server (pebble)."""

from __future__ import annotations

import shutil
import socket
import ssl

import httpx
import pytest
from cryptography import x509

from tests.acme_server import start_pebble
from tests.cluster.conftest import Cluster, lb_answers
from tests.conftest import wizard

pytestmark = pytest.mark.stack
DOMAIN = "llm-lb.test"


def test_lb_serves_a_lets_encrypt_certificate(cluster: Cluster,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    lb = cluster.lb
    wizard("--root", str(lb.root), "sandbox", "--port-base", str(lb.port_base), "--setup-only",
           "--host", f"{DOMAIN}=127.0.0.1", check=True)
    pebble = start_pebble(tmp_path_factory.mktemp("pebble-lb"), lb.port_base + 80)
    shutil.copy(pebble.ca_file, lb.root / "etc/slm-appliance/pebble-ca.pem")
    tls = (f"tls:\n  mode: letsencrypt\n  domain: {DOMAIN}\n  acme_directory: "
           f"{pebble.directory}\n  acme_ca_bundle: /etc/slm-appliance/pebble-ca.pem\n")
    try:
        p = lb.apply(lb_answers(cluster.backends, tls))
        assert "issued" in p.stdout, p.stdout + p.stderr
        trust = ssl.create_default_context(cadata=pebble.root_pem())
        with socket.create_connection(("127.0.0.1", lb.port_base + 443)) as raw, \
                trust.wrap_socket(raw, server_hostname=DOMAIN) as s:
            leaf = x509.load_der_x509_certificate(s.getpeercert(binary_form=True) or b"")
        assert "Pebble Intermediate" in leaf.issuer.rfc4514_string()
        with httpx.Client(base_url=lb.https, verify=trust, timeout=60) as c:
            r = c.get("/v1/models", headers=cluster.auth(),
                      extensions={"sni_hostname": DOMAIN})
            assert r.status_code == 200
    finally:
        lb.apply(lb_answers(cluster.backends))
        pebble.stop()
