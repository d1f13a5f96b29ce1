"""What every command shares: exit codes, the apply Context, progress printing, reading
answers (files, the last applied ones over the site defaults) and the end-of-apply summary."""

from __future__ import annotations

import sys
from pathlib import Path

from appliance.answers.schema import Answers, load_yaml, parse
from appliance.apply.runtime import Context, Event
from appliance.apply.transaction import ApplyResult
from appliance.errors import AnswersError, FieldError
from appliance.host import facts as facts_mod
from appliance.host.paths import Layout
from appliance.host.services import manager_for
from appliance.host.site import Site
from appliance.plan.render.report import curl_example
from appliance.plan.state import load_state
from appliance.tls.obtain import Outcome

EXIT_OK, EXIT_FAIL, EXIT_INVALID, EXIT_TLS = 0, 1, 2, 3


def print_event(e: Event) -> None:
    mark = {"running": "..", "done": "ok", "failed": "!!", "skipped": "--"}.get(e.state, "  ")
    if e.step == "write-file":
        print(f"   [{mark}] wrote {e.detail}")
    elif e.state != "running" or e.step in ("write", "engine-ready"):
        print(f"[{mark}] {e.step}{': ' + e.detail if e.detail else ''}", flush=True)


def make_context(layout: Layout, site: Site, quiet: bool = False) -> Context:
    return Context(layout=layout, site=site, facts=facts_mod.detect(),
                   services=manager_for(site, layout),
                   emit=(lambda e: None) if quiet else print_event)


def base_answers(site: Site) -> Answers:
    return parse(site.defaults, "site defaults") if site.defaults else Answers()


def read_answers(path: str, site: Site) -> Answers:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AnswersError([FieldError("(file)", f"cannot read ({exc.strerror})",
                                       "check the path")], path) from None
    except UnicodeDecodeError:
        raise AnswersError([FieldError("(file)", "not UTF-8 text", "save it as UTF-8")],
                           path) from None
    return parse(load_yaml(text, path), path, base_answers(site))


def applied_answers(layout: Layout, site: Site) -> Answers:
    last = layout.map(layout.applied_answers)
    base = base_answers(site)
    if last.exists():
        base = parse(load_yaml(last.read_text(), str(last)), str(last), base)
    return base


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
