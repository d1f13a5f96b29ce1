"""``wizard``: apply, validate, status, stop, sandbox, context, bench, tune, renew, and the
Textual wizard. This module only parses arguments, dispatches to ``wizard.commands`` and turns
the core's errors into messages and exit codes; every change ends in the core's apply path."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.host.paths import Layout
from appliance.host.site import load_site

from .commands import GROUPS
from .commands.common import EXIT_FAIL
from .commands.configure import cmd_apply, cmd_validate
from .commands.tui import cmd_tui


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
    for group in GROUPS:
        group.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Every file gets an explicit mode; this only keeps folders and logs readable when the
    # caller (one-apps runs its stages with umask 0077) is stricter.
    os.umask(0o022)
    layout = Layout(Path(args.root))
    try:
        if args.command and not getattr(args, "needs_site", True):
            return int(args.handler(args, layout))
        site = load_site(layout)
        if args.apply:
            return cmd_apply(args, layout, site)
        if args.validate:
            return cmd_validate(args, layout, site)
        if args.command:
            return int(args.handler(args, layout, site))
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
