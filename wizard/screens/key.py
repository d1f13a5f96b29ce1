"""Step 5: the API key: keep it or rotate it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widget import Widget
from textual.widgets import Static

from .base import Choice, Choices, StepScreen, field_error
from .drafts import key_values


class KeyScreen(StepScreen):
    STEP = "key"
    AUTO_FOCUS = "#choice"

    def body(self) -> Iterable[Widget]:
        session = self.host.session
        key = session.api_key()
        rotate = self.draft.get("api_key") == "rotate"
        yield Static("Clients send it as 'Authorization: Bearer <key>'. Select the field and "
                     "copy it with your terminal.", classes="hint")
        yield Static(key or "(generated at the first apply)", id="key", markup=False)
        yield Static(f"Stored in {session.layout.map(session.layout.api_key_file)} (0600, root "
                     "only).", classes="hint")
        with Choices(id="choice", compact=True):
            yield Choice("Keep this key", id="keep", value=not rotate)
            yield Choice("Rotate: make a new key (old clients stop working)", id="rotate",
                         value=rotate)
        yield field_error("choice")

    def values(self) -> dict[str, Any]:
        return key_values(self.query_one("#rotate", Choice).value, self.draft.get("api_key"))
