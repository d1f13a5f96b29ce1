"""The Textual wizard (``wizard`` with no command, ``--first-boot`` from the login banner)."""

from __future__ import annotations

import argparse
import sys
from functools import partial

from appliance.apply.runtime import make_context
from appliance.host import facts as facts_mod
from appliance.host.paths import Layout
from appliance.host.site import Site

from .common import EXIT_OK
from .services import cmd_status


def cmd_tui(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    """The Textual wizard; without a terminal, the status instead."""
    from appliance.plan.state import DONE_MARKER

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.first_boot and (not interactive or layout.map(DONE_MARKER).exists()):
        return EXIT_OK
    if not interactive:
        return cmd_status(argparse.Namespace(json=False), layout, site)
    from appliance.session import Session

    from ..app import WizardApp

    facts = facts_mod.detect()
    app = WizardApp(Session(layout, site, facts, partial(make_context, layout, site,
                                                         facts=facts)))
    code = app.run() or EXIT_OK
    if app.exit_summary:  # after the screen is restored, so it stays in the terminal
        print(app.exit_summary)
    return code
