"""The hardened nginx config as rendered: limits, probe, TLS profile, errors, log format."""

from __future__ import annotations

import re

from appliance.plan.render.nginx import render_nginx_conf
from appliance.plan.render.nginx_errors import CODES, MESSAGES
from appliance.plan.render.nginx_limits import connection_budget
from appliance.plan.render.nginx_tls import TLS_CIPHERS
from tests.unit.test_render import _location, nginx_inputs

GIB = 1 << 30


def test_health_is_get_only_without_body_and_a_short_timeout() -> None:
    health = _location(render_nginx_conf(nginx_inputs()), "location = /health {")
    assert "if ($request_method !~ ^(GET|HEAD)$)" in health
    assert "$http_content_length" in health and "$http_transfer_encoding" in health
    assert re.findall(r"proxy_read_timeout (\d+)s;", health) == ["2"]
    assert "error_page 504 =503" in health and "error_page 502 =503" in health
    assert "limit_req zone=slm_probe" in health


def test_tls_profile_is_mozilla_intermediate_with_aead_only() -> None:
    conf = render_nginx_conf(nginx_inputs())
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_session_tickets off;" in conf
    for weak in ("CBC", "SHA:", "CCM", "ARIA", "CAMELLIA", ":DHE-"):
        assert weak not in TLS_CIPHERS + ":", weak
    assert all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c)
               for c in TLS_CIPHERS.split(":"))


def test_hsts_only_with_a_public_certificate() -> None:
    assert "Strict-Transport-Security" not in render_nginx_conf(nginx_inputs())
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in \
        render_nginx_conf(nginx_inputs(hsts=True))  # type: ignore[arg-type]


def test_access_log_never_has_the_query_string_or_headers() -> None:
    conf = render_nginx_conf(nginx_inputs())
    fmt = conf[conf.index("log_format slm_main"):conf.index("access_log")]
    assert "$uri" in fmt
    for leak in ("$request ", "$request_uri", "$args", "$query_string", "$http_authorization",
                 "$request_body"):
        assert leak not in fmt, leak


def test_every_error_status_has_a_json_message_and_no_location_drops_the_pages() -> None:
    conf = render_nginx_conf(nginx_inputs())
    assert set(CODES) - {502} <= set(MESSAGES)
    # Locations that set their own error_page lose the server's: only the probe may.
    https = conf[conf.index("listen 0.0.0.0:443"):]
    assert https.count("error_page 400 ") == 2  # server level + /health
    assert "add_header" not in "".join(_location(https, h) for h in (
        "location ~ ^/v1/(", "location /v1/ {", "location = /metrics {"))


def test_bearer_scheme_is_case_insensitive_and_the_token_exact() -> None:
    conf = render_nginx_conf(nginx_inputs())
    assert '"~*^bearer[ ]+(?<slm_token>[^ ]+)[ ]*$" $slm_token;' in conf


def test_connection_budget_follows_memory_and_the_file_limit() -> None:
    assert connection_budget(2 * GIB) == (4096, 8256)
    assert connection_budget(8 * GIB) == (8192, 16448)
    assert connection_budget(64 * GIB) == (16384, 32832)
    wc, nofile = connection_budget(64 * GIB, nofile_hard=20000)
    assert nofile == 20000 and 2 * wc + 64 <= 20000


def test_no_kept_alive_connections_to_the_engine() -> None:
    """llama-server closes kept-alive connections on its own terms; nginx cannot retry a POST on
    one it reused just as the engine closed it (a 503 on back-to-back requests behind the LB)."""
    conf = render_nginx_conf(nginx_inputs())
    upstream = conf[conf.index("upstream slm_engine {"):]
    assert "keepalive" not in upstream[:upstream.index("}")]
