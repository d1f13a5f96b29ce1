"""nginx's TLS profile: Mozilla "intermediate", minus what issue 14 found weak.

TLS 1.2 with ECDHE and AEAD suites only (no CBC, CCM, ARIA, Camellia, no DHE), TLS 1.3 with
OpenSSL's default suites written out (so a changed default cannot add CCM), no session tickets
(they defeat forward secrecy while the ticket key lives), and HSTS only while a publicly trusted
certificate is served: with a self-signed one it would lock browsers out for two years.
"""

from __future__ import annotations

TLS_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"))
"""Mozilla intermediate without the DHE suites: TLS 1.2 ECDHE with AEAD only."""
TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
HSTS_MAX_AGE = 63072000  # 2 years, Mozilla's recommendation


def render_tls(cert: str, key: str) -> str:
    return f"""ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {TLS_CIPHERS};
        ssl_conf_command Ciphersuites {TLS13_SUITES};
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:slm_tls:10m;
        ssl_session_timeout 1d;
        ssl_session_tickets off;"""


def render_hsts(public_certificate: bool) -> str:
    if not public_certificate:
        return "# no HSTS: the served certificate is not publicly trusted"
    return f'add_header Strict-Transport-Security "max-age={HSTS_MAX_AGE}" always;'
