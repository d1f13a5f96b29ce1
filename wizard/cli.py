"""``wizard``: apply, validate, status, stop, sandbox, context. Every path ends in the core's
``apply_answers``; this module only reads arguments and prints progress and errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from appliance import facts as facts_mod
from appliance.answers import Answers, load_yaml, parse
from appliance.apply import (
    ApplyResult,
    Context,
    Event,
    apply_answers,
    describe,
    diff,
    make_plan,
    renew,
)
from appliance.bench import Sample
from appliance.context import RULE
from appliance.context_change import apply_context
from appliance.errors import AnswersError, ApplianceError, FieldError
from appliance.letsencrypt import Outcome
from appliance.paths import Layout
from appliance.plan import load_state
from appliance.render.report import curl_example
from appliance.resolve import resolve
from appliance.services import NGINX, manager_for
from appliance.site import Site, load_site
from appliance.status import status

EXIT_OK, EXIT_FAIL, EXIT_INVALID, EXIT_TLS = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wizard", description="Configure the SLM appliance.")
    p.add_argument("--root", default=os.environ.get("SLM_ROOT", "/"),
                   help="folder that holds the installation (default /)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--apply", metavar="FILE", help="apply an answers file")
    mode.add_argument("--validate", metavar="FILE", help="check an answers file, change nothing")
    p.add_argument("--dry-run", action="store_true", help="with --apply: show the diff only")
    p.add_argument("--first-boot", action="store_true",
                   help="run the wizard only if it was never completed and a terminal is attached")
    sub = p.add_subparsers(dest="command")
    st = sub.add_parser("status", help="what runs now")
    st.add_argument("--json", action="store_true")
    sub.add_parser("stop", help="stop the engine and nginx")
    bn = sub.add_parser("bench", help="measure tokens/s of the running stack through nginx")
    bn.add_argument("--json", action="store_true")
    bn.add_argument("--tokens", type=int, default=64, help="tokens generated per request")
    bn.add_argument("--repetitions", type=int, default=3)
    tn = sub.add_parser("tune", help="measure thread counts and propose the fastest")
    tn.add_argument("--apply", dest="keep_best", action="store_true",
                    help="apply the best thread count (default: restore the current one)")
    tn.add_argument("--json", action="store_true")
    cx = sub.add_parser("context", help="apply ONEAPP_* context variables from the environment")
    cx.add_argument("--no-acme", action="store_true",
                    help="leave the Let's Encrypt step to 'wizard renew' (one-apps bootstrap)")
    rn = sub.add_parser("renew", help="renew the Let's Encrypt certificate when due")
    rn.add_argument("--force", action="store_true", help="order now, ignoring backoff")
    sb = sub.add_parser("sandbox", help="set up and run the whole stack in --root on loopback")
    sb.add_argument("--port-base", type=int, default=18000,
                    help="https on BASE+443, http on BASE+80, engine on BASE+81")
    sb.add_argument("--answers", metavar="FILE", help="answers to apply instead of the defaults")
    sb.add_argument("--setup-only", action="store_true",
                    help="write the site file and models, start nothing")
    sb.add_argument("--no-wizard", action="store_true",
                    help="do not open the wizard afterwards (it opens only on a terminal)")
    sb.add_argument("--host", action="append", default=[], metavar="NAME=IP",
                    help="resolve NAME to IP before DNS (like /etc/hosts; for ACME tests)")
    return p


def _print_event(e: Event) -> None:
    mark = {"running": "..", "done": "ok", "failed": "!!", "skipped": "--"}.get(e.state, "  ")
    if e.step == "write-file":
        print(f"   [{mark}] wrote {e.detail}")
    elif e.state != "running" or e.step in ("write", "engine-ready"):
        print(f"[{mark}] {e.step}{': ' + e.detail if e.detail else ''}", flush=True)


def _context(layout: Layout, site: Site, quiet: bool = False) -> Context:
    return Context(layout=layout, site=site, facts=facts_mod.detect(),
                   services=manager_for(site, layout),
                   emit=(lambda e: None) if quiet else _print_event)


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


def _summary(ctx: Context) -> None:
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


def cmd_apply(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    answers = read_answers(args.apply, site)
    ctx = _context(layout, site)
    if args.dry_run:
        plan = make_plan(answers, ctx, args.apply)
        changes = diff(plan, layout)
        print(describe(changes) or "no changes")
        return EXIT_OK
    result = apply_answers(answers, ctx, args.apply)
    print(f"note: {RULE}")
    return _finish(result, ctx)


def _finish(result: ApplyResult, ctx: Context) -> int:
    for w in result.warnings:
        print(f"warning: {w}")
    if result.noop and not result.tls:
        print("nothing to change: the running configuration already matches")
    _summary(ctx)
    return _tls_exit(result.tls)


def _tls_exit(outcome: Outcome | None) -> int:
    """Exit 3: the configuration is applied but the certificate could not be obtained."""
    if outcome is None or outcome.state in ("issued", "reused", "skipped"):
        if outcome:
            print(f"TLS: {outcome.message}")
        return EXIT_OK
    print(f"warning: Let's Encrypt: {outcome.message}\nthe previous certificate keeps serving",
          file=sys.stderr)
    return EXIT_TLS


def cmd_validate(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    answers = read_answers(args.validate, site)
    r = resolve(answers, facts_mod.detect(), site, layout, args.validate,
                load_state(layout).get("sha256_stamps"))
    for w in r.warnings:
        print(f"warning: {w}")
    print(f"{args.validate}: valid ({r.model_id}, {r.threads} threads, "
          f"~{r.memory_estimate >> 20} MiB RAM)")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    info = status(layout, manager_for(site, layout))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:14} {v}")
    return EXIT_OK if info["ready"] else EXIT_FAIL


def _applied_answers(layout: Layout, site: Site) -> Answers:
    last = layout.map(layout.applied_answers)
    base = base_answers(site)
    if last.exists():
        base = parse(load_yaml(last.read_text(), str(last)), str(last), base)
    return base


def cmd_bench(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    from appliance.bench import benchmark
    from appliance.status import local_client

    api = local_client(layout)

    def show(n: int, s: Sample) -> None:
        if not args.json:
            print(f"  run {n + 1}: {s.gen_tps:6.1f} tok/s generation, {s.prompt_tps or 0:7.1f} "
                  f"tok/s prompt, first token {s.ttft_ms:6.1f} ms")

    with httpx.Client(verify=api.verify, timeout=300) as client:
        result = benchmark(client, api.base_url, api.model, max_tokens=args.tokens,
                           repetitions=args.repetitions, threads=api.threads,
                           headers=api.headers, on_sample=show)
    out = result.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['model']} on {out['threads']} threads: {out['generation_tokens_per_s']} "
              f"tok/s generation (+/- {result.generation.stdev:.1f}), "
              f"{out['prompt_tokens_per_s']} tok/s prompt, first token {out['ttft_ms']} ms")
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    from appliance.tuning import autotune

    ctx = _context(layout, site, quiet=True)

    def show(threads: int, tps: float) -> None:
        if not args.json:
            print(f"  {threads:3d} threads: {tps:7.1f} tok/s", flush=True)

    result = autotune(_applied_answers(layout, site), ctx, keep_best=args.keep_best,
                      on_result=show)
    if args.json:
        print(json.dumps({"best_threads": result.best, "measured": result.measured,
                          "stopped_early": result.stopped_early, "applied": args.keep_best}))
    else:
        done = "applied" if args.keep_best else "run 'wizard tune --apply' to apply it"
        print(f"best: {result.best} threads ({result.measured[result.best]:.1f} tok/s); {done}")
    return EXIT_OK


def cmd_stop(layout: Layout, site: Site) -> int:
    services = manager_for(site, layout)
    for unit in ("llama-server.service", "local-ai.service", NGINX):
        if services.is_active(unit):
            services.stop(unit)
            print(f"stopped {unit}")
    return EXIT_OK


def cmd_context(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    """Only variables changed since the last boot apply (so wizard changes survive reboots)."""
    ctx = _context(layout, site)
    done = apply_context(os.environ, _applied_answers(layout, site), ctx, acme=not args.no_acme)
    print(f"context: {', '.join(sorted(done.applied)) or 'no variable changed'} ({RULE})")
    return _finish(done.result, ctx)


def cmd_renew(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = _context(layout, site)
    return _tls_exit(renew(_applied_answers(layout, site), ctx, force=args.force))


def cmd_sandbox(args: argparse.Namespace, layout: Layout) -> int:
    from appliance import sandbox

    hosts = dict(h.split("=", 1) for h in args.host if "=" in h)
    site = sandbox.setup(layout, args.port_base, hosts or None)
    if args.setup_only:
        return EXIT_OK
    answers = read_answers(args.answers, site) if args.answers else base_answers(site)
    ctx = _context(layout, site)
    result = apply_answers(answers, ctx, args.answers or "sandbox defaults")
    if result.noop:
        print("the sandbox stack is already running with these answers")
    code = _finish(result, ctx)
    print(f"\nstop it with: wizard --root {layout.root} stop")
    if code == EXIT_OK and not args.no_wizard and sys.stdin.isatty() and sys.stdout.isatty():
        input("\nPress Enter to open the wizard on this stack (Ctrl+Q leaves it)...")
        return cmd_tui(argparse.Namespace(first_boot=False), layout, site)
    return code


def cmd_tui(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    """The Textual wizard; without a terminal, the status instead."""
    from appliance.plan import DONE_MARKER

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.first_boot and (not interactive or layout.map(DONE_MARKER).exists()):
        return EXIT_OK
    if not interactive:
        return cmd_status(argparse.Namespace(json=False), layout, site)
    from appliance.session import Session

    from .app import WizardApp

    def context(emit: Callable[[Event], None]) -> Context:
        return Context(layout=layout, site=site, facts=facts, services=manager_for(site, layout),
                       emit=emit)

    facts = facts_mod.detect()
    return WizardApp(Session(layout, site, facts, context)).run() or EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Every file gets an explicit mode; this only keeps folders and logs readable when the
    # caller (one-apps runs its stages with umask 0077) is stricter.
    os.umask(0o022)
    layout = Layout(Path(args.root))
    try:
        if args.command == "sandbox":
            return cmd_sandbox(args, layout)
        site = load_site(layout)
        if args.apply:
            return cmd_apply(args, layout, site)
        if args.validate:
            return cmd_validate(args, layout, site)
        if args.command == "status":
            return cmd_status(args, layout, site)
        if args.command == "stop":
            return cmd_stop(layout, site)
        if args.command == "context":
            return cmd_context(args, layout, site)
        if args.command == "bench":
            return cmd_bench(args, layout, site)
        if args.command == "tune":
            return cmd_tune(args, layout, site)
        if args.command == "renew":
            return cmd_renew(args, layout, site)
        return cmd_tui(args, layout, site)
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except PermissionError as exc:
        print(f"error: {exc.strerror}: {exc.filename} (run it as root: sudo wizard ...)",
              file=sys.stderr)
        return EXIT_FAIL
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
