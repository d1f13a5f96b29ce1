"""A Let's Encrypt name that does not resolve: everything clients are told keeps the address
whose certificate is served; Status sees the pending order; self-signed again forgets it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Stack, wizard

pytestmark = pytest.mark.stack
LE_INVALID = ("tls:\n  mode: letsencrypt\n  domain: llm.invalid\n"
              "  acme_directory: https://127.0.0.1:9/directory\n")


def status(s: Stack) -> dict[str, object]:
    return dict(json.loads(wizard("--root", str(s.root), "status", "--json").stdout))


def test_unresolvable_domain_keeps_the_served_address(fresh: Stack) -> None:
    s = fresh
    served = f"https://127.0.0.1:{s.port_base + 443}/v1"
    assert status(s)["endpoint"] == served
    p = s.apply(LE_INVALID, check=False)
    assert p.returncode == 3, p.stdout + p.stderr
    st = status(s)
    assert st["endpoint"] == served and st["tls_mode"] == "self-signed"
    pending = st["tls_pending"]
    assert isinstance(pending, dict) and pending["domain"] == "llm.invalid"
    assert pending["state"] == "waiting" and pending["next_attempt"]
    assert "llm.invalid" in str(pending["last_error"])
    report = (s.root / "etc/one-appliance/config").read_text()
    assert f"endpoint = {served}\n" in report and "https://llm.invalid" not in report
    banner = (s.root / "etc/profile.d/slm-appliance.sh").read_text()
    assert served in banner and "llm.invalid" not in banner
    with s.client() as c:  # the snippet's address works
        assert c.get("/v1/models", headers=s.auth()).status_code == 200

    s.apply("tls:\n  mode: self-signed\n  domain: llm.invalid\n")  # domain field left filled
    st = status(s)
    assert st["tls_domain"] is None and st["acme"] is None and st["tls_pending"] is None
    assert not (s.root / "var/lib/slm-appliance/acme.json").exists()
    applied = (s.root / "var/lib/slm-appliance/answers.applied.yaml").read_text()
    assert "llm.invalid" not in applied
