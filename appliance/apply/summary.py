"""Review in plain words: one line per change, before the exact diff (pure).

``summarize`` compares what runs (``state.json`` of the last apply) with what the plan would
record, and says what happens to the services and for how long clients notice. The wizard's
Review screen shows these lines first; ``wizard --apply`` prints them too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.apply.changes import Change
from appliance.host.paths import Layout
from appliance.plan.build import Plan
from appliance.plan.strategy import EngineStep, Strategy


@dataclass(frozen=True)
class Line:
    text: str
    notice: bool = False
    """Worth the operator's attention: downtime, a new key, a base model, a pending cert."""

    def __str__(self) -> str:
        return self.text


def _get(state: Mapping[str, Any], *path: str) -> Any:
    node: Any = state
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _was(before: Mapping[str, Any], after: Mapping[str, Any], path: tuple[str, ...],
         label: str, unit: str = "") -> str | None:
    old, new = _get(before, *path), _get(after, *path)
    if new is None or old == new:
        return None
    return f"{label} {new}{unit}" if old is None else f"{label} {old} -> {new}{unit}"


def slot_share(context_size: int, parallel: int) -> str:
    """How the context is shared: llama-server splits it evenly between its slots."""
    if parallel <= 1:
        return f"1 slot x {context_size} tokens"
    return f"{parallel} slots x {context_size // parallel} tokens each"


def engine_line(step: EngineStep) -> Line:
    if step.strategy is Strategy.SWITCH:
        return Line("Engine: switched with no downtime (the new one starts beside the old one)")
    if step.strategy is Strategy.RESTART:
        why = f" ({step.reason})" if step.reason else ""
        return Line(f"Engine restart: up to ~{step.gap_s} s of 503 with Retry-After{why}", True)
    if step.strategy is Strategy.START:
        return Line("Engine: starts (it is not running now)")
    return Line("Engine: keeps running, no restart")


def summarize(before: Mapping[str, Any], after: Mapping[str, Any], step: EngineStep, *,
              files_change: bool = True, key_changed: bool = False, base_model: bool = False,
              nginx: str | None = None, pending_domain: str | None = None) -> list[Line]:
    """Lines for Review. ``before``/``after`` have the shape of ``state.json`` (``before`` is
    empty on a first apply); ``nginx`` is "reload", "start" or None; ``pending_domain`` is a
    Let's Encrypt name whose certificate is ordered after the apply."""
    if not files_change and step.strategy is Strategy.KEEP and not nginx and not pending_domain:
        return [Line("Nothing changes: this configuration already runs")]
    out: list[Line] = []
    model = _was(before, after, ("model_id",), "Model")
    if model:
        out.append(Line(model + (" (base model: no chat template)" if base_model else ""),
                        base_model))
    elif base_model and not before:
        out.append(Line("Model has no chat template (base model): chat answers may ramble", True))
    for line in (_was(before, after, ("engine",), "Engine"),
                 _was(before, after, ("threads",), "Threads"),
                 _was(before, after, ("answers", "model", "context_size"), "Context", " tokens")):
        if line:
            out.append(Line(line))
    parallel = _was(before, after, ("answers", "parallel"), "Parallel requests")
    if parallel:
        ctx = int(_get(after, "answers", "model", "context_size") or 0)
        share = slot_share(ctx, int(_get(after, "answers", "parallel") or 1))
        out.append(Line(f"{parallel} ({share})"))
    for name in ("https", "http"):
        line = _was(before, after, ("answers", "listen", name), f"Listen {name.upper()} on")
        if line:
            out.append(Line(line))
    endpoint = _was(before, after, ("endpoint",), "Endpoint")
    if endpoint:
        out.append(Line(endpoint + (" (clients need the new address)" if before else ""),
                        bool(before)))
    if key_changed:
        out.append(Line("API key: new key (clients need it)" if before else "API key: created",
                        bool(before)))
    out.append(engine_line(step))
    if nginx == "start":
        out.append(Line("nginx: starts"))
    elif nginx == "reload":
        out.append(Line("nginx: reloads (open connections and streams finish)"))
    out += _certificate(before, after, pending_domain)
    if not key_changed and before:
        out.append(Line("API key: unchanged"))
    return out


def _certificate(before: Mapping[str, Any], after: Mapping[str, Any],
                 pending: str | None) -> list[Line]:
    mode = after.get("tls_mode") or "self-signed"
    domain = _get(after, "answers", "tls", "domain")
    what = f"Let's Encrypt for {domain}" if mode == "letsencrypt" and domain else str(mode)
    if before and before.get("tls_served_sha256") == after.get("tls_served_sha256"):
        lines = [Line(f"Certificate: unchanged ({what})")]
    elif mode == "letsencrypt":
        lines = [Line(f"Certificate: {what}")]
    elif before.get("tls_mode") == "letsencrypt":
        lines = [Line("Certificate: self-signed again (the Let's Encrypt one stops serving)",
                      True)]
    else:
        lines = [Line("Certificate: new self-signed certificate" if before
                      else "Certificate: self-signed")]
    if pending:
        lines.append(Line(f"Let's Encrypt for {pending}: requested after the apply; the "
                          "current certificate and address stay until it is issued", True))
    return lines


def summarize_plan(before: Mapping[str, Any], plan: Plan, changes: Sequence[Change],
                   actions: Sequence[str]) -> list[Line]:
    """``summarize`` for a plan and the diff/actions an apply would perform."""
    step = plan.engine_step
    answers = plan.resolved.answers
    served = plan.served.mode if plan.served else "self-signed"
    pending = (answers.tls.domain if answers.tls.mode == "letsencrypt"
               and served != "letsencrypt" else None)
    nginx = next((a.split()[0] for a in actions if a.endswith(" nginx.service")
                  and a.split()[0] in ("start", "reload")), None)
    return summarize(before, plan.state, step, files_change=bool(changes),
                     key_changed=any(c.spec.path == Layout.api_key_file for c in changes),
                     base_model=plan.resolved.chat_template is not None,
                     nginx=nginx, pending_domain=pending)
