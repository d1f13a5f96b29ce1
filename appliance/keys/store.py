"""The named-key store: ``/etc/slm-appliance/keys.json`` (0600), pure operations on it.

The store holds the named keys (secret, creation time, optional expiry and limits). The key
named ``default`` is the appliance's ``api_key`` file, so existing answers keep working; it is
never written here. Every operation returns a new store or raises ``AnswersError`` naming
the field and the fix, before anything is written: the apply path writes the store together
with the nginx files it renders, so a failed apply leaves the old store in place.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from appliance.errors import AnswersError, FieldError
from appliance.host.files import read_bytes
from appliance.host.paths import Layout

DEFAULT = "default"
"""The appliance's ``api_key``: listed like the others, rotated through the answers."""

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
RESERVED = (DEFAULT, "include", "hostnames", "volatile", "none")
"""``default`` is taken; the rest are words nginx's ``map`` treats specially."""

CONTEXT_KEY_NOTE = ("a key set through ONEAPP_SLM_API_KEY is visible to anyone who can read "
                    "this VM in Sunstone: give each client a named key instead "
                    "(sudo wizard key add NAME)")
SECRET_BYTES = 32
MAX_RPM, MAX_CONCURRENT = 100_000, 1_000
FORMAT = 1


@dataclass(frozen=True)
class NamedKey:
    name: str
    secret: str
    created: str
    """UTC, ISO 8601 to the second."""
    expires: str | None = None
    """YYYY-MM-DD: refused from 00:00 of that day (the VM's time zone, UTC on the image)."""
    rpm: int | None = None
    concurrent: int | None = None

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and dt.date.fromisoformat(self.expires) <= today

    def public(self) -> dict[str, object]:
        """Everything but the secret: what listings, reports and the TUI may show."""
        return {k: v for k, v in asdict(self).items() if k != "secret"}


@dataclass(frozen=True)
class KeyStore:
    keys: tuple[NamedKey, ...] = field(default_factory=tuple)

    def names(self) -> list[str]:
        return [k.name for k in self.keys]

    def get(self, name: str) -> NamedKey | None:
        return next((k for k in self.keys if k.name == name), None)

    def to_json(self) -> bytes:
        data = {"format": FORMAT, "keys": [asdict(k) for k in self.keys]}
        return (json.dumps(data, indent=2) + "\n").encode()


KeyChange = Callable[[KeyStore, str], KeyStore]
"""A store change (add, revoke, rotate), given the store and the ``default`` secret."""


def new_secret() -> str:
    """>= 32 random bytes, URL-safe: the same alphabet nginx's map matches exactly."""
    return secrets.token_urlsafe(SECRET_BYTES)


def _invalid(source: str, fld: str, message: str, fix: str) -> AnswersError:
    return AnswersError([FieldError(fld, message, fix)], source)


def load_store(layout: Layout) -> KeyStore:
    """The store on disk; missing means no named keys. A damaged file is an error that names
    it, never silently an empty store (that would revoke every named key)."""
    path = layout.map(layout.keys_file)
    raw = read_bytes(path)
    if raw is None:
        return KeyStore()
    fix = f"restore {layout.keys_file} from a backup, or remove it to drop all named keys"
    try:
        data = json.loads(raw)
        keys = tuple(NamedKey(**k) for k in data["keys"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _invalid(str(path), "(file)", f"not a valid key store ({exc})", fix) from None
    return KeyStore(keys)


def check_name(name: str, store: KeyStore, default_secret: str, source: str) -> None:
    if not NAME_RE.match(name):
        raise _invalid(source, "name", f"{name!r} is not a valid key name",
                       "use 1-32 characters: lowercase letters, digits, '-' or '_', "
                       "starting with a letter or digit (e.g. ci-bot)")
    if name in RESERVED:
        raise _invalid(source, "name", f"{name!r} is reserved", "pick another name")
    known = [k.secret for k in store.keys] + ([default_secret] if default_secret else [])
    # A random secret holds any short word by chance: only long fragments count.
    if any(s in name or (len(name) >= 8 and name in s) for s in known if s):
        raise _invalid(source, "name", "the name contains part of an API key",
                       "never put a secret in a name: names appear in logs and listings")


def check_limits(rpm: int | None, concurrent: int | None, expires: str | None,
                 today: dt.date, source: str) -> None:
    errors = []
    for fld, value, top, unit in (("--rpm", rpm, MAX_RPM, " requests per minute"),
                                  ("--concurrent", concurrent, MAX_CONCURRENT, "")):
        if value is not None and (type(value) is not int or not 1 <= value <= top):
            errors.append(FieldError(fld, f"{value!r} is not a whole number from 1 to {top}",
                                     f"give 1-{top}{unit}, or leave it out for no limit"))
    if expires is not None:
        try:
            day = dt.date.fromisoformat(expires)
        except ValueError:
            day = None
        if day is None or not re.fullmatch(r"\d{4}-\d\d-\d\d", expires):
            errors.append(FieldError("--expires", f"{expires!r} is not a date",
                                     "write it as YYYY-MM-DD"))
        elif day <= today:
            errors.append(FieldError("--expires", f"{expires} is not in the future",
                                     "give a later date (the key is refused from that day)"))
    if errors:
        raise AnswersError(errors, source)


def add_key(store: KeyStore, name: str, secret: str, now: dt.datetime, *,
            default_secret: str = "", expires: str | None = None, rpm: int | None = None,
            concurrent: int | None = None) -> KeyStore:
    source = f"wizard key add {name}"
    check_name(name, store, default_secret, source)
    if store.get(name):
        raise _invalid(source, "name", f"a key named {name!r} exists already",
                       f"pick another name, or 'wizard key rotate {name}' for a new secret")
    check_limits(rpm, concurrent, expires, now.date(), source)
    key = NamedKey(name, secret, now.strftime("%Y-%m-%dT%H:%M:%SZ"), expires, rpm, concurrent)
    return KeyStore((*store.keys, key))


def _require(store: KeyStore, name: str, verb: str) -> NamedKey:
    source = f"wizard key {verb} {name}"
    if name == DEFAULT:
        raise _invalid(source, "name", "'default' is the appliance's api_key",
                       "rotate it with 'wizard key rotate default'; it cannot be revoked "
                       "(the apply checks the endpoint with it)")
    key = store.get(name)
    if key is None:
        known = ", ".join(store.names()) or "none yet"
        raise _invalid(source, "name", f"no key named {name!r} (named keys: {known})",
                       "see 'wizard key list'")
    return key


def revoke_key(store: KeyStore, name: str) -> KeyStore:
    _require(store, name, "revoke")
    return KeyStore(tuple(k for k in store.keys if k.name != name))


def rotate_key(store: KeyStore, name: str, secret: str) -> KeyStore:
    old = _require(store, name, "rotate")
    return KeyStore(tuple(replace(k, secret=secret) if k is old else k for k in store.keys))
