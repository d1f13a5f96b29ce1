"""Certificates: ``renew`` (Let's Encrypt when due; the timer runs it twice a day)."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.answers.stored import applied_answers
from appliance.apply.run import renew
from appliance.host.paths import Layout
from appliance.host.site import Site

from .common import make_context, tls_exit


def add(sub: Any) -> None:
    rn = sub.add_parser("renew", help="renew the Let's Encrypt certificate when due")
    rn.add_argument("--force", action="store_true", help="order now, ignoring backoff")
    rn.set_defaults(handler=cmd_renew)


def cmd_renew(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = make_context(layout, site)
    return tls_exit(renew(applied_answers(layout, site), ctx, force=args.force))
