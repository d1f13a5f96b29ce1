"""Named API keys: ``key add|list|revoke|rotate`` and ``usage``. Every change goes through
the core's apply path (an nginx reload, never an engine restart); secrets are printed once,
by ``add`` and ``rotate``, and nowhere else."""

from __future__ import annotations

import argparse
import json
from typing import Any

from appliance.answers.stored import applied_answers
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.keys import manage
from appliance.keys.usage import parse_since, usage

from .common import EXIT_OK, make_context


def add(sub: Any) -> None:
    key = sub.add_parser("key", help="named API keys: add, list, revoke, rotate")
    ksub = key.add_subparsers(dest="key_command", required=True)
    a = ksub.add_parser("add", help="add a key and print it once")
    a.add_argument("name", help="1-32 of a-z 0-9 - _ (shown in logs and listings)")
    a.add_argument("--rpm", type=int, help="requests per minute (429 beyond)")
    a.add_argument("--concurrent", type=int, help="simultaneous requests (429 beyond)")
    a.add_argument("--expires", metavar="YYYY-MM-DD", help="refused from that day on")
    a.set_defaults(handler=cmd_add)
    ls = ksub.add_parser("list", help="keys, limits and use; never the secrets")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)
    rv = ksub.add_parser("revoke", help="refuse a key from the next request on")
    rv.add_argument("name")
    rv.set_defaults(handler=cmd_revoke)
    rt = ksub.add_parser("rotate", help="give a key a new secret and print it once")
    rt.add_argument("name")
    rt.set_defaults(handler=cmd_rotate)
    us = sub.add_parser("usage", help="requests, errors and busy time per key")
    us.add_argument("--json", action="store_true")
    us.add_argument("--since", metavar="DATE", help="YYYY-MM-DD or an ISO 8601 time (UTC)")
    us.set_defaults(handler=cmd_usage)


def _show_secret(r: manage.KeyResult, verb: str) -> None:
    print(f"key '{r.name}' {verb}. It is shown only this once: store it now.\n"
          f"{r.secret}\n"
          "Clients send it as 'Authorization: Bearer <key>'.")


def cmd_add(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = make_context(layout, site, quiet=True)
    r = manage.add(applied_answers(layout, site), ctx, args.name, expires=args.expires,
                   rpm=args.rpm, concurrent=args.concurrent)
    _show_secret(r, "added")
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = make_context(layout, site, quiet=True)
    r = manage.rotate(applied_answers(layout, site), ctx, args.name)
    _show_secret(r, "rotated; the old secret is refused from now on")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = make_context(layout, site, quiet=True)
    manage.revoke(applied_answers(layout, site), ctx, args.name)
    print(f"key '{args.name}' revoked: refused from now on (requests in flight finish)")
    return EXIT_OK


def _limits(row: dict[str, Any]) -> str:
    parts = [f"{row['rpm']}/min" if row["rpm"] else "", f"{row['concurrent']} at once"
             if row["concurrent"] else ""]
    return ", ".join(p for p in parts if p) or "-"


def cmd_list(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    rows = manage.listing(layout)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'NAME':<20} {'CREATED':<21} {'EXPIRES':<11} {'LIMITS':<20} {'REQUESTS':>8}  "
          "LAST USED")
    for r in rows:
        expires = f"{r['expires']}!" if r["expired"] else r["expires"] or "-"
        print(f"{r['name']:<20} {r['created'] or '-':<21} {expires:<11} "
              f"{_limits(r):<20} {r['requests']:>8}  {r['last_used'] or '-'}")
    if any(r["expired"] for r in rows):
        print("!: expired, refused like a revoked key ('wizard key revoke NAME' removes it)")
    return EXIT_OK


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def cmd_usage(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    u = usage(layout, parse_since(args.since) if args.since else None)
    if args.json:
        print(json.dumps(u.to_dict(), indent=2))
        return EXIT_OK
    print(f"{'KEY':<16} {'REQUESTS':>8} {'ERRORS':>6} {'429':>4} {'BUSY s':>8} {'PROMPT':>8} "
          f"{'OUTPUT':>8}  LAST USED")
    for name, k in u.keys.items():
        print(f"{name:<16} {k.requests:>8} {k.errors:>6} {k.rate_limited:>4} "
              f"{k.busy_seconds:>8.1f} {_n(k.prompt_tokens):>8} {_n(k.completion_tokens):>8}  "
              f"{k.last_used or '-'}")
    if u.skipped_lines:
        print(f"({u.skipped_lines} log line(s) in another format skipped)")
    return EXIT_OK
