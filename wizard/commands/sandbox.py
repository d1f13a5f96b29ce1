"""``sandbox``: the whole stack in ``--root`` on loopback ports, then the wizard on top."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.answers.stored import read_answers, site_defaults
from appliance.apply.run import apply_answers
from appliance.host.paths import Layout

from .common import EXIT_OK, finish, make_context
from .tui import cmd_tui


def add(sub: Any) -> None:
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
    sb.set_defaults(handler=cmd_sandbox, needs_site=False)


def cmd_sandbox(args: argparse.Namespace, layout: Layout) -> int:
    from appliance.host import sandbox

    hosts = dict(h.split("=", 1) for h in args.host if "=" in h)
    site = sandbox.setup(layout, args.port_base, hosts or None)
    if args.setup_only:
        return EXIT_OK
    answers = read_answers(args.answers, site) if args.answers else site_defaults(site)
    ctx = make_context(layout, site)
    result = apply_answers(answers, ctx, args.answers or "sandbox defaults")
    if result.noop:
        print("the sandbox stack is already running with these answers")
    code = finish(result, ctx)
    print(f"\nstop it with: wizard --root {layout.root} stop")
    if code == EXIT_OK and not args.no_wizard and sys.stdin.isatty() and sys.stdout.isatty():
        input("\nPress Enter to open the wizard on this stack (Ctrl+Q leaves it)...")
        return cmd_tui(argparse.Namespace(first_boot=False), layout, site)
    return code
