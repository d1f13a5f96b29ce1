"""nginx: TLS + API key in front of the engine, streaming unbuffered, errors as OpenAI JSON.

Only ACME challenges (http) and the readiness probe (``/health``) are open without the key.
The key lives in a separate 0600 include so the main config can be shown in a review diff.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from appliance.answers.hostport import join_hostport, split_hostport
from appliance.plan.render import MANAGED, MANAGED_BY
from appliance.plan.render.keys import LOG_FORMAT
from appliance.plan.render.model_gate import gated

STREAM_ROUTES = ("chat/completions", "completions", "responses", "messages")
TIMEOUT_S = 900  # > the longest CPU generation we allow through (nginx's 60 s kills streams)
RETRY_AFTER_S = 5
BODY_LIMIT_MB = 16  # nginx's client_max_body_size; LocalAI's upload limit is set to match


@dataclass(frozen=True)
class NginxInputs:
    https: str
    http: str
    engine: str
    readiness_path: str
    cert: str
    key: str
    key_map: str
    webroot: str
    pid: str
    log_dir: str
    temp_dir: str
    user: str
    key_policy: str = ""
    """Named keys, http level (validity, the usage log format, limit zones): plan/render/keys."""
    key_limits: str = ""
    """Named keys, https server level (limit_req/limit_conn, the JSON 429)."""
    js_module: str | None = None
    """njs, loaded once for every script (named keys' token counter)."""
    token_filter: str = ""
    """The token routes' body filter that logs the engine's token counts (plan/render/keys)."""
    cert_sha256: str = ""
    """Written into the config so a renewed certificate changes it and triggers a reload."""
    served_model: str = ""
    gate_import: str = ""
    """With njs: the served-model gate's js_import; a request naming another model gets a 400
    (plan/render/model_gate.py)."""


def _error(message: str, typ: str, code: int | str) -> str:
    body = json.dumps({"error": {"message": message, "type": typ, "code": code}})
    return "'" + body.replace("\\", "\\\\").replace("'", "\\'") + "\\n'"


def _listen(value: str) -> str:
    return join_hostport(*split_hostport(value))


UNAUTHORIZED = _error("Missing or invalid API key: send the header 'Authorization: Bearer <key>'.",
                      "invalid_request_error", "invalid_api_key")
KEY_CHECK = f"""if ($slm_key_ok = 0) {{
                add_header WWW-Authenticate 'Bearer realm="slm-appliance"' always;
                return 401 {UNAUTHORIZED};
            }}"""


def render_key_map(api_key: str) -> str:
    """Case-sensitive regex (plain map strings match case-insensitively)."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", api_key):
        raise ValueError("API key has characters that cannot be matched safely")
    escaped = re.escape(api_key)
    return (f"{MANAGED_BY}. Secret: keep 0600.\n"
            "map $http_authorization $slm_key_ok {\n"
            "    default 0;\n"
            f'    "~^Bearer {escaped}$" 1;\n'
            "}\n")


def render_nginx_conf(i: NginxInputs) -> str:
    _, https_port = split_hostport(i.https)
    port_suffix = "" if https_port == 443 else f":{https_port}"
    streams = "|".join(re.escape(r) for r in STREAM_ROUTES)
    down = _error("The model server is starting or restarting; retry in a few seconds.",
                  "unavailable_error", 503)
    timeout = _error("The model server did not answer in time.", "timeout_error", 504)
    too_big = _error("The request body is too large.", "invalid_request_error", 413)
    not_found = _error("Unknown route: the API is under /v1/ (e.g. /v1/chat/completions).",
                       "invalid_request_error", 404)
    proxy = "proxy_pass http://slm_engine;"
    # Named keys (plan/render/keys.py): the log format is defined before access_log uses it.
    keys_http = f"include {i.key_map};" + (f"\n    include {i.key_policy};" if i.key_policy
                                             else "")
    log_format = f" {LOG_FORMAT}" if i.key_policy else ""
    keys_server = f"include {i.key_limits};" if i.key_limits else ""
    load = f"load_module {i.js_module};\n" if i.js_module else ""
    stream = f"""{proxy}
            proxy_buffering off;
            proxy_cache off;
            gzip off;
            {i.token_filter}"""
    api, stream_named, api_named = proxy, "", ""
    if i.js_module and i.gate_import and i.served_model:
        keys_http += f"\n    {i.gate_import}"
        stream, stream_named = gated(i.served_model, "@slm_stream", stream, f"{BODY_LIMIT_MB}m")
        api, api_named = gated(i.served_model, "@slm_api", proxy, f"{BODY_LIMIT_MB}m")
    return f"""{load}{MANAGED}
# serving certificate sha256 {i.cert_sha256 or "-"}
user {i.user};
worker_processes auto;
pid {i.pid};
error_log {i.log_dir}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    {keys_http}
    access_log {i.log_dir}/access.log{log_format};
    client_body_temp_path {i.temp_dir}/body;
    proxy_temp_path {i.temp_dir}/proxy;
    fastcgi_temp_path {i.temp_dir}/fastcgi;
    uwsgi_temp_path {i.temp_dir}/uwsgi;
    scgi_temp_path {i.temp_dir}/scgi;

    types {{
        text/plain txt;
        application/json json;
    }}
    default_type application/json;
    charset utf-8;
    server_tokens off;
    keepalive_timeout 65s;
    client_max_body_size {BODY_LIMIT_MB}m;

    map $status $slm_retry_after {{
        503 {RETRY_AFTER_S};
        default "";
    }}

    upstream slm_engine {{
        server {_listen(i.engine)};
        keepalive 8;
    }}

    server {{
        listen {_listen(i.http)};
        server_name _;

        location ^~ /.well-known/acme-challenge/ {{
            root {i.webroot};
            default_type text/plain;
            try_files $uri =404;
        }}

        location / {{
            return 301 https://$host{port_suffix}$request_uri;
        }}
    }}

    server {{
        listen {_listen(i.https)} ssl;
        server_name _;

        ssl_certificate {i.cert};
        ssl_certificate_key {i.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:slm_tls:10m;
        ssl_session_timeout 1d;

        proxy_http_version 1.1;
        # Set here only: a proxy_set_header in a location would drop these (nginx inheritance).
        proxy_set_header Connection "";
        proxy_set_header Authorization "";   # the client's key never reaches the engine
        proxy_connect_timeout 5s;
        proxy_read_timeout {TIMEOUT_S}s;
        proxy_send_timeout {TIMEOUT_S}s;
        add_header Retry-After $slm_retry_after always;

        error_page 502 = @engine_down;
        error_page 504 = @engine_timeout;
        error_page 413 = @too_large;
        {keys_server}

        location @engine_down {{
            add_header Retry-After {RETRY_AFTER_S} always;
            return 503 {down};
        }}

        location @engine_timeout {{
            return 504 {timeout};
        }}

        location @too_large {{
            return 413 {too_big};
        }}

        # Readiness probe, open without the key: 200 when the model is loaded, else 503.
        location = /health {{
            proxy_pass http://slm_engine{i.readiness_path};
        }}

        # Token streams: no buffering, no cache, no compression, so each event leaves at once.
        location ~ ^/v1/({streams})$ {{
            {KEY_CHECK}
            {stream}
        }}

        {stream_named}location /v1/ {{
            {KEY_CHECK}
            {api}
        }}

        {api_named}location = /metrics {{
            {KEY_CHECK}
            {proxy}
        }}

        location / {{
            {KEY_CHECK}
            return 404 {not_found};
        }}
    }}
}}
"""
