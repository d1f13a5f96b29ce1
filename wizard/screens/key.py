"""Step 5: API keys. The default key (keep or rotate, applied with the other answers) and
named keys, one per client: add one (its secret and a curl line shown once), revoke one.
Named-key changes apply at once through the core (an nginx reload, never an engine restart),
so they are not part of the draft."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Select, Static

from .base import Choice, Choices, StepScreen, field_error, field_row
from .drafts import key_values


def _limit(text: str, what: str) -> int | None:
    """'' -> no limit, digits -> the number (the core checks the range)."""
    text = text.strip()
    if text and not text.isdigit():
        raise ValueError(f"{what}: {text!r} is not a whole number (leave it empty for no limit)")
    return int(text) if text else None


class KeyScreen(StepScreen):
    STEP = "key"
    AUTO_FOCUS = "#choice"

    def body(self) -> Iterable[Widget]:
        session = self.host.session
        key = session.api_key()
        rotate = self.draft.get("api_key") == "rotate"
        yield Static("The default key. Clients send it as 'Authorization: Bearer <key>'. Select "
                     "the field and copy it with your terminal.", classes="hint")
        yield Static(key or "(generated at the first apply)", id="key", markup=False)
        yield Static(f"Stored in {session.layout.map(session.layout.api_key_file)} (0600, root "
                     "only).", classes="hint")
        with Choices(id="choice", compact=True):
            yield Choice("Keep this key", id="keep", value=not rotate)
            yield Choice("Rotate: make a new key (old clients stop working)", id="rotate",
                         value=rotate)
        yield field_error("choice")
        yield Static("Named keys: one per client, each revocable alone, with its own limits "
                     "and usage. A key set in ONEAPP_SLM_API_KEY is visible in Sunstone.",
                     classes="hint")
        yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
        yield field_row("New key name",
                        Input(id="key-name", placeholder="e.g. ci-bot", compact=True))
        yield field_row("Limits",
                        Input(id="key-rpm", placeholder="requests/min (none)", compact=True),
                        Input(id="key-concurrent", placeholder="at once (none)", compact=True),
                        Button("Add key", id="key-add", compact=True))
        yield field_error("key-name")
        yield field_row("Revoke",
                        Select[str]([], id="key-pick", prompt="a named key", compact=True),
                        Button("Revoke", id="key-revoke", compact=True))
        yield Static("", id="key-new", markup=False)

    def on_mount(self) -> None:
        self.query_one("#keys", DataTable).add_columns("Name", "Limits", "Expires",
                                                       "Requests", "Last used")
        self._refresh()

    def _refresh(self) -> None:
        rows = self.host.session.keys()
        table = self.query_one("#keys", DataTable)
        table.clear()
        for r in rows:
            limits = ", ".join(p for p in (f"{r['rpm']}/min" if r["rpm"] else "",
                                           f"{r['concurrent']} at once"
                                           if r["concurrent"] else "") if p) or "-"
            table.add_row(r["name"], limits, r["expires"] or "-", str(r["requests"]),
                          (r["last_used"] or "-")[:16])
        named = [r["name"] for r in rows if r["name"] != "default"]
        self.query_one("#key-pick", Select).set_options((n, n) for n in named)

    def _busy(self, busy: bool) -> None:
        for wid in ("#key-add", "#key-revoke"):
            self.query_one(wid, Button).disabled = busy

    @on(Button.Pressed, "#key-add")
    def _add(self) -> None:
        name = self.query_one("#key-name", Input).value.strip()
        try:
            rpm = _limit(self.query_one("#key-rpm", Input).value, "Requests/min")
            concurrent = _limit(self.query_one("#key-concurrent", Input).value, "At once")
        except ValueError as exc:
            self._failed(str(exc))
            return
        self._busy(True)
        self.query_one("#key-new", Static).update(f"adding '{name}' (nginx reload)...")
        self.work(lambda: self.host.session.add_key(name, rpm, concurrent),
                  lambda secret: self._added(name, secret), self._failed, group="keys")

    def _added(self, name: str, secret: str) -> None:
        from appliance.clients import Access, curl_line

        info = self.host.session.status()
        access = Access(str(info.get("endpoint")), str(info.get("model")), secret, "",
                        info.get("ca_file"), "")
        self._busy(False)
        label = self.query_one("#key-name-error", Static)
        label.update("")
        label.remove_class("shown")
        for wid in ("#key-name", "#key-rpm", "#key-concurrent"):
            self.query_one(wid, Input).value = ""
        self.query_one("#key-new", Static).update(
            f"Key '{name}' added. It is shown only now: copy it.\n{secret}\n\n"
            f"Try it:\n{curl_line(access, access.ca_file)}")
        self._refresh()

    @on(Button.Pressed, "#key-revoke")
    def _revoke(self) -> None:
        pick = self.query_one("#key-pick", Select).value
        if not isinstance(pick, str):
            self._failed("pick a named key to revoke")
            return
        self._busy(True)
        self.query_one("#key-new", Static).update(f"revoking '{pick}' (nginx reload)...")
        self.work(lambda: self.host.session.revoke_key(pick), lambda _: self._revoked(pick),
                  self._failed, group="keys")

    def _revoked(self, name: str) -> None:
        self._busy(False)
        self.query_one("#key-new", Static).update(
            f"Key '{name}' revoked: refused from now on (requests in flight finish).")
        self._refresh()

    def _failed(self, reason: str) -> None:
        self._busy(False)
        self.query_one("#key-new", Static).update("")
        label = self.query_one("#key-name-error", Static)
        label.update(f"✖ {reason}")
        label.add_class("shown")

    def values(self) -> dict[str, Any]:
        return key_values(self.query_one("#rotate", Choice).value, self.draft.get("api_key"))
