"""The request guard: what a keyed request may ask of the engine, checked in nginx (njs).

Found by attacking a sandbox: a body nested 200,000 levels deep segfaults llama-server;
``n_probs: 100000`` returns the whole vocabulary per token (281 MB for 60 tokens, +4.5 GB of
engine memory); ``max_tokens: -1`` runs to the end of the slot's context. So before the engine
sees a body, the guard refuses with a 400 OpenAI-style JSON naming the field:
a body that is not a JSON object, JSON nested deeper than njs's parser allows (32 levels, a
hard limit that fails in about a millisecond even at 200,000 levels), ``n_probs`` /
``top_logprobs`` / integer ``logprobs`` above 20 (OpenAI's own maximum), ``n`` / ``n_cmpl``
above the engine's request slots, and a negative, fractional or too large ``max_tokens`` /
``max_completion_tokens`` / ``n_predict``.

Above the operator's cap (``limits.max_tokens``, default 2048) the guard refuses too, naming
the limit: llama-server's ``--n-predict`` (set to the cap) is only the default for a request
that names no ``max_tokens`` (measured: ``max_tokens: 5000`` with ``--n-predict 16`` ran for
100 s), so clamping would need the body rewritten; a clear 400 says what to send instead.

Why njs (``libnginx-mod-http-js``), not the Lua module or ModSecurity: the appliance already
loads njs for the served-model check and the token counter, and that check already reads and
parses every body, so the guard adds no module, no package and no second parse; njs's
``JSON.parse`` bounds nesting itself. Lua + lua-cjson would add LuaJIT, lua-resty-core, NDK and
cjson (five packages) for the same checks; ModSecurity v3 brings a rule engine whose JSON body
processor buffers and walks every argument, and whose refusals cannot name the field in an
OpenAI-style body. Streams are untouched: ``js_content`` only reads the request and hands it to
the proxying location (``internalRedirect``), which still has ``proxy_buffering off``. The
measured per-request cost is in docs/performance.md (proxy benchmark, guard on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_LOGPROBS = 20
NJS_MAX_DEPTH = 32  # njs JSON.parse: "Nested too deep"
DEFAULT_MAX_TOKENS = 2048


@dataclass(frozen=True)
class GuardLimits:
    max_tokens: int = DEFAULT_MAX_TOKENS
    """The operator's cap (``limits.max_tokens``)."""
    max_choices: int = 1
    """``n`` / ``n_cmpl`` at most this (the engine's request slots)."""


GUARD_JS = """\
// -- request guard (render/guard.py): what a keyed request may ask of the engine --
var LIMITS = %(limits)s;

function refuse(r, param, message) {
    r.headersOut["Content-Type"] = "application/json";
    r.return(400, JSON.stringify({error: {message: message, type: "invalid_request_error",
        param: param, code: "invalid_request"}}) + "\\n");
    return null;
}

function whole(v) {
    return typeof v === "number" && isFinite(v) && Math.floor(v) === v;
}

function bounded(r, doc, name, lo, hi, fix) {
    var v = doc[name];
    if (v === undefined || v === null) {
        return true;
    }
    if (!whole(v) || v < lo || v > hi) {
        refuse(r, name, "'" + name + "' is " + JSON.stringify(v) + ": " + fix);
        return false;
    }
    return true;
}

// The parsed body (an object), {} when there is none, or null once a 400 was sent.
function guard(r) {
    var text = r.requestText;
    if (text === undefined || text === null || text === "") {
        return {};
    }
    if (!/^\\s*\\{/.test(text)) {
        return refuse(r, null, "The request body must be a JSON object ({...}).");
    }
    var doc;
    try {
        doc = JSON.parse(text);
    } catch (e) {
        if (/too deep/i.test(e.message)) {
            return refuse(r, null, "The request body nests JSON deeper than " +
                LIMITS.maxDepth + " levels: flatten it.");
        }
        return refuse(r, null, "The request body is not valid JSON: " + e.message);
    }
    var probs = "use an integer from 0 to " + LIMITS.maxLogprobs + ".";
    var lp = doc.logprobs;
    if (!(bounded(r, doc, "n_probs", 0, LIMITS.maxLogprobs, probs) &&
          bounded(r, doc, "top_logprobs", 0, LIMITS.maxLogprobs, probs) &&
          (typeof lp === "boolean" ||
           bounded(r, doc, "logprobs", 0, LIMITS.maxLogprobs, "use true/false or " + probs)))) {
        return null;
    }
    var choices = "use an integer from 1 to " + LIMITS.maxChoices +
        " (this appliance's request slots).";
    if (!(bounded(r, doc, "n", 1, LIMITS.maxChoices, choices) &&
          bounded(r, doc, "n_cmpl", 1, LIMITS.maxChoices, choices))) {
        return null;
    }
    var tokens = "use an integer from 0 to " + LIMITS.maxTokens +
        " (this appliance's limit), or leave it out.";
    var names = ["max_tokens", "max_completion_tokens", "n_predict"];
    for (var i = 0; i < names.length; i++) {
        if (!bounded(r, doc, names[i], 0, LIMITS.maxTokens, tokens)) {
            return null;
        }
    }
    return doc;
}
"""


def render_guard(limits: GuardLimits) -> str:
    """The guard's JavaScript (``guard(r)``), with the limits written in."""
    values = {"maxDepth": NJS_MAX_DEPTH, "maxLogprobs": MAX_LOGPROBS,
              "maxTokens": limits.max_tokens, "maxChoices": max(1, limits.max_choices)}
    return GUARD_JS % {"limits": json.dumps(values)}
