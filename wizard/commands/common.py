"""What every command shares: exit codes, the apply Context, progress printing, reading
and the end-of-apply summary."""

from __future__ import annotations

import sys

from appliance.apply import runtime
from appliance.apply.runtime import Context, Event
from appliance.apply.transaction import ApplyResult
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.render.report import curl_example
from appliance.plan.state import load_state
from appliance.tls.obtain import Outcome

EXIT_OK, EXIT_FAIL, EXIT_INVALID, EXIT_TLS = 0, 1, 2, 3


def print_event(e: Event) -> None:
    mark = {"running": "..", "done": "ok", "failed": "!!", "skipped": "--"}.get(e.state, "  ")
    if e.step == "write-file":
        print(f"   [{mark}] wrote {e.detail}")
    elif e.state != "running" or e.step in ("write", "engine-ready", "download"):
        print(f"[{mark}] {e.step}{': ' + e.detail if e.detail else ''}", flush=True)


def make_context(layout: Layout, site: Site, quiet: bool = False) -> Context:
    """The core's Context, printing progress unless ``quiet``."""
    return runtime.make_context(layout, site, (lambda e: None) if quiet else print_event)


def print_summary(ctx: Context) -> None:
    state = load_state(ctx.layout)
    if not state:
        return
    ca = (str(ctx.layout.map(ctx.layout.selfsigned_cert))
          if state.get("tls_mode") == "self-signed" else None)
    key = str(ctx.layout.map(ctx.layout.api_key_file))
    print(f"\nendpoint : {state['endpoint']}\nmodel    : {state['model_id']} "
          f"({state['engine']}, {state['threads']} threads)\napi key  : {key}\n"
          f"CA file  : {ca or '(publicly trusted certificate)'}\n"
          f"try      : {curl_example(state['endpoint'], key, ca, state['model_id'], False)}")


def finish(result: ApplyResult, ctx: Context) -> int:
    for w in result.warnings:
        print(f"warning: {w}")
    if result.noop and not result.tls:
        print("nothing to change: the running configuration already matches")
    elif not result.noop:
        print("\nchanged:\n" + "".join(f"  {line}\n" for line in result.summary), end="")
    print_summary(ctx)
    return tls_exit(result.tls)


def tls_exit(outcome: Outcome | None) -> int:
    """Exit 3: the configuration is applied but the certificate could not be obtained."""
    if outcome is None or outcome.state in ("issued", "reused", "skipped"):
        if outcome:
            print(f"TLS: {outcome.message}")
        return EXIT_OK
    print(f"warning: Let's Encrypt: {outcome.message}\nthe previous certificate keeps serving",
          file=sys.stderr)
    return EXIT_TLS
