"""Key operations for the CLI and the TUI: each one is a store change applied through the one
apply path (the store and nginx's include files written together, ``nginx -t``, a reload,
verified, else everything rolled back). Only nginx reloads: the engine never restarts, and a
stream in flight under a revoked key finishes on the old worker.

The change runs under the apply lock, on the store the last good apply left, so two key
commands at once cannot lose each other's change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from appliance.answers.schema import Answers
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context
from appliance.apply.transaction import ApplyResult
from appliance.errors import SetupError
from appliance.host.paths import Layout
from appliance.keys import store as ks
from appliance.keys.usage import usage
from appliance.plan.state import load_state


@dataclass(frozen=True)
class KeyResult:
    name: str
    secret: str | None
    """Shown once by the caller (add, rotate); never stored anywhere but the 0600 files."""
    result: ApplyResult


def _configured(layout: Layout) -> None:
    """A key command changes keys only: before the first apply it would configure it all."""
    if not load_state(layout):
        raise SetupError("nothing is configured yet: apply answers first (wizard --apply FILE, "
                         "or the wizard), then add keys")


def add(answers: Answers, ctx: Context, name: str, *, expires: str | None = None,
        rpm: int | None = None, concurrent: int | None = None) -> KeyResult:
    _configured(ctx.layout)
    secret = ks.new_secret()
    now = ctx.now()

    def change(store: ks.KeyStore, default_secret: str) -> ks.KeyStore:
        return ks.add_key(store, name, secret, now, default_secret=default_secret,
                          expires=expires, rpm=rpm, concurrent=concurrent)

    return KeyResult(name, secret, apply_answers(answers, ctx, f"key add {name}", acme=False,
                                                 keys=change))


def revoke(answers: Answers, ctx: Context, name: str) -> KeyResult:
    _configured(ctx.layout)
    result = apply_answers(answers, ctx, f"key revoke {name}", acme=False,
                           keys=lambda store, _: ks.revoke_key(store, name))
    return KeyResult(name, None, result)


def rotate(answers: Answers, ctx: Context, name: str) -> KeyResult:
    """``default`` is the answers' api_key: rotating it is an explicit new key in the answers
    (the applied answers then say ``keep``); a named key gets a new secret, same limits."""
    _configured(ctx.layout)
    secret = ks.new_secret()
    if name == ks.DEFAULT:
        result = apply_answers(answers.replace(api_key=secret), ctx, "key rotate default",
                               acme=False)
    else:
        result = apply_answers(answers, ctx, f"key rotate {name}", acme=False,
                               keys=lambda store, _: ks.rotate_key(store, name, secret))
    return KeyResult(name, secret, result)


def listing(layout: Layout) -> list[dict[str, Any]]:
    """Every key with its limits and usage, never a secret. ``default`` comes first."""
    store = ks.load_store(layout)
    used = usage(layout).keys
    key_file = layout.map(layout.api_key_file)
    created = None
    if key_file.exists():  # the default key's age is its file's: it is rewritten only to change
        created = dt.datetime.fromtimestamp(key_file.stat().st_mtime, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    rows: list[dict[str, Any]] = [{"name": ks.DEFAULT, "created": created, "expires": None,
                                   "rpm": None, "concurrent": None, "expired": False}]
    today = dt.date.today()  # nginx compares with local time, as here
    rows += [k.public() | {"expired": k.expired(today)} for k in store.keys]
    for row in rows:
        u = used.get(row["name"])
        row["requests"] = u.requests if u else 0
        row["last_used"] = u.last_used if u else None
    return rows
