"""Configure: ``--apply FILE`` (or ``--dry-run``), ``--validate FILE``, and ``context``
(ONEAPP_* variables at boot). All end in the core's one apply path."""

from __future__ import annotations

import argparse
import os
from typing import Any

from appliance.answers.context import RULE
from appliance.answers.stored import applied_answers, read_answers
from appliance.apply.changes import describe, diff
from appliance.apply.context_change import apply_context
from appliance.apply.run import apply_answers, make_plan
from appliance.host import facts as facts_mod
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.resolve import resolve
from appliance.plan.state import load_state

from .common import EXIT_OK, finish, make_context


def add(sub: Any) -> None:
    cx = sub.add_parser("context", help="apply ONEAPP_* context variables from the environment")
    cx.add_argument("--no-acme", action="store_true",
                    help="leave the Let's Encrypt step to 'wizard renew' (one-apps bootstrap)")
    cx.set_defaults(handler=cmd_context)


def cmd_apply(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    answers = read_answers(args.apply, site)
    ctx = make_context(layout, site)
    if args.dry_run:
        plan = make_plan(answers, ctx, args.apply)
        changes = diff(plan, layout)
        print(describe(changes) or "no changes")
        return EXIT_OK
    result = apply_answers(answers, ctx, args.apply)
    print(f"note: {RULE}")
    return finish(result, ctx)


def cmd_validate(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    answers = read_answers(args.validate, site)
    r = resolve(answers, facts_mod.detect(), site, layout, args.validate,
                load_state(layout).get("sha256_stamps"))
    for w in r.warnings:
        print(f"warning: {w}")
    print(f"{args.validate}: valid ({r.model_id}, {r.threads} threads, "
          f"~{r.memory_estimate >> 20} MiB RAM)")
    return EXIT_OK


def cmd_context(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    """Only variables changed since the last boot apply (so wizard changes survive reboots)."""
    ctx = make_context(layout, site)
    done = apply_context(os.environ, applied_answers(layout, site), ctx, acme=not args.no_acme)
    print(f"context: {', '.join(sorted(done.applied)) or 'no variable changed'} ({RULE})")
    return finish(done.result, ctx)
