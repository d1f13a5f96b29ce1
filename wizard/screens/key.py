from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget
from textual.widgets import RadioButton, RadioSet, Static

from .base import StepScreen


class KeyScreen(StepScreen):
    STEP = "key"
    AUTO_FOCUS = "#choice"

    def body(self) -> Iterable[Widget]:
        session = self.wizard.session
        key = session.api_key()
        yield Static("Clients send it as 'Authorization: Bearer <key>'. Select the field and "
                     "copy it with your terminal.", classes="hint")
        yield Static(key or "(generated at the first apply)", id="key", markup=False)
        yield Static(f"Stored in {session.layout.map(session.layout.api_key_file)} (0600, root "
                     "only).",
                     classes="hint")
        with RadioSet(id="choice"):
            yield RadioButton("Keep this key", id="keep", value=self.draft.api_key != "rotate")
            yield RadioButton("Rotate: make a new key (old clients stop working)", id="rotate",
                              value=self.draft.api_key == "rotate")

    def leave(self) -> bool:
        rotate = self.query_one("#rotate", RadioButton).value
        current = self.draft.api_key
        keep = current if current not in ("keep", "rotate") else "keep"
        self.wizard.draft = self.draft.replace(api_key="rotate" if rotate else keep)
        return True
