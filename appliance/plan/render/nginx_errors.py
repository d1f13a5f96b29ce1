"""Every error nginx can answer, as OpenAI-style JSON with a plain message.

One internal location answers them all: ``error_page CODE /.slm-error`` keeps the original
status (nginx's ``err_status`` overrides the ``return`` code), and a ``map`` on ``$status``
picks the message: nginx's own HTML pages (400, 405, 413, 414, 500 ...) never reach a client.
Engine responses pass through untouched: llama-server and LocalAI already answer JSON.
"""

from __future__ import annotations

import json

ERROR_LOCATION = "/.slm-error"
"""A URI, not a named location: errors found while reading the request line (400, 414) have no
URI yet, and nginx cannot redirect those to a named location."""
RETRY_AFTER_S = 5
"""Seconds a client should wait when the model server is (re)starting or frozen."""

# status -> (message, OpenAI error type)
MESSAGES: dict[int, tuple[str, str]] = {
    400: ("The request is malformed (request line, headers or body): check the HTTP request.",
          "invalid_request_error"),
    403: ("Forbidden.", "invalid_request_error"),
    404: ("Unknown route: the API is under /v1/ (e.g. /v1/chat/completions).",
          "invalid_request_error"),
    405: ("Method not allowed on this route (the readiness probe takes GET or HEAD).",
          "invalid_request_error"),
    413: ("The request body is too large (limit 16 MB).", "invalid_request_error"),
    414: ("The request URI is too long.", "invalid_request_error"),
    429: ("Too many requests or connections from this address; retry in a second.",
          "rate_limit_error"),
    500: ("Internal error in the proxy.", "server_error"),
    503: ("The model server is starting or restarting (or not answering); retry in a few "
          "seconds.", "unavailable_error"),
    504: ("The model server did not answer in time.", "timeout_error"),
}
DEFAULT_MESSAGE = ("The request failed.", "server_error")
CODES = (400, 403, 404, 405, 413, 414, 429, 500, 502, 503, 504)
"""Statuses routed to the JSON page; 502 (engine refused the connection) is answered as 503."""


def json_error(message: str, typ: str, code: int | str, param: str | None = None) -> str:
    """The body as an nginx single-quoted string (ends in a newline, as the engine's do)."""
    body = json.dumps({"error": {"message": message, "type": typ, "param": param, "code": code}})
    return "'" + body.replace("\\", "\\\\").replace("'", "\\'") + "\\n'"


def error_pages(engine_down_as: int = 503, timeout_as: int | None = None) -> str:
    """``error_page`` lines (only inherited by locations that set none: repeat them whole)."""
    keep = [c for c in CODES if c not in (502, 504)]
    lines = [f"error_page {' '.join(map(str, keep))} {ERROR_LOCATION};",
             f"error_page 494 =400 {ERROR_LOCATION};",  # request headers too large
             f"error_page 502 ={engine_down_as} {ERROR_LOCATION};"]
    lines.append(f"error_page 504 ={timeout_as} {ERROR_LOCATION};" if timeout_as
                 else f"error_page 504 {ERROR_LOCATION};")
    return "\n        ".join(lines)


def render_error_maps() -> str:
    """http-level maps: the body per status, Retry-After, WWW-Authenticate and Allow headers."""
    out = ["map $status $slm_error_body {"]
    for code, (message, typ) in MESSAGES.items():
        out.append(f"        {code} {json_error(message, typ, code)};")
    message, typ = DEFAULT_MESSAGE
    out.append(f"        default {json_error(message, typ, 'error')};")
    out.append("    }")
    out.append(f"""
    map $status $slm_retry_after {{
        503 {RETRY_AFTER_S};
        429 1;
        default "";
    }}

    map $status $slm_www_authenticate {{
        401 'Bearer realm="slm-appliance"';
        default "";
    }}

    map $status $slm_allow {{
        405 "GET, HEAD";
        default "";
    }}""")
    return "\n".join(out)


def render_error_location() -> str:
    return f"""location = {ERROR_LOCATION} {{
            internal;
            default_type application/json;
            return 200 $slm_error_body;
        }}"""
