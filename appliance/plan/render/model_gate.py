"""The served-model gate in nginx (njs): a request naming another model gets a 400 JSON that
names the served one, before it reaches any engine.

Each appliance serves one model. llama-server ignores the ``model`` field, but LocalAI tries to
load whatever a request names (a second backend process, or a failed load), so the check sits
in front of every engine. nginx cannot read a body in its rewrite phase: ``js_content`` reads
it (held in memory: ``client_body_buffer_size`` = the body limit), checks ``model`` and hands
the request, body included, to the named location that proxies to the engine. The body is
parsed once, by the request guard (render/guard.py), which refuses bodies that are not JSON
objects; requests with no ``model`` pass through unchanged.
"""

from __future__ import annotations

import re

GATE_JS_FILE = "/etc/nginx/slm-model-gate.js"

_GATE_JS = """\
// Managed by slm-appliance: one model is served; a request naming another gets a 400.
%(guard)s
function check(r) {
    var served = r.variables.slm_served_model;
    var doc = guard(r);  // parsed once, checked by the request guard (render/guard.py)
    if (doc === null) {
        return;
    }
    var model = doc.model;
    if (model === undefined || model === null || model === served) {
        r.internalRedirect(r.variables.slm_engine_location);
        return;
    }
    r.headersOut["Content-Type"] = "application/json";
    r.return(400, JSON.stringify({error: {
        message: "This appliance serves the model '" + served + "' only, not '" + model +
            "': send \\"model\\": \\"" + served + "\\" or leave the field out.",
        type: "invalid_request_error", param: "model", code: "model_not_found"}}) + "\\n");
}
export default {check};
"""


def gate_js(guard: str) -> str:
    """The script: the request guard's ``guard(r)`` (render/guard.py), then the model check."""
    return _GATE_JS.replace("%(guard)s", guard)


def gated(served_model: str, name: str, proxy: str, body_limit: str) -> tuple[str, str]:
    """A location's content: the check, then the named location ``name`` that proxies.
    Returns (lines for the location, the named location block)."""
    if not re.fullmatch(r"[A-Za-z0-9._:/-]+", served_model):
        raise ValueError(f"model id {served_model!r} cannot be written into nginx safely")
    entry = (f"# -- served-model gate: another model gets a 400 (render/model_gate.py) --\n"
             f"            set $slm_served_model \"{served_model}\";\n"
             f"            set $slm_engine_location {name};\n"
             f"            client_body_buffer_size {body_limit};  # the body stays in memory\n"
             f"            js_content slm_gate.check;")
    named = f"location {name} {{\n            {proxy}\n        }}\n\n        "
    return entry, named


def gate_import(js_file: str) -> str:
    """The http-level line that loads the gate's script."""
    return f"js_import slm_gate from {js_file};"

