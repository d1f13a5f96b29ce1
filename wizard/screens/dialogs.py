"""Modal dialogs. Each fits a 60x20 terminal with its buttons visible: the text scrolls, the
buttons never do."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ErrorDialog(ModalScreen[str]):
    """Why it failed (the cause first), the log, and what next: Retry or Back."""

    AUTO_FOCUS = "#retry"

    def __init__(self, title: str, reason: str, log: str) -> None:
        super().__init__()
        self.title_text, self.reason, self.log_text = title, reason, log

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
            yield Static(f"[b red]{self.title_text}[/]")
            yield Static(self.reason, markup=False, classes="reason")
            with VerticalScroll():
                yield Static(self.log_text or "(no log)", classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back")
                yield Button("Retry", id="retry", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id))


class ConfirmQuit(ModalScreen[bool]):
    """Quitting would drop changes that are not applied: say which, and ask."""

    AUTO_FOCUS = "#keep"

    def __init__(self, changes: list[str]) -> None:
        super().__init__()
        self.changes = changes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("[b]Quit without applying?[/] These changes are not applied and would "
                         "be lost:")
            with VerticalScroll():
                yield Static("\n".join(f"• {c}" for c in self.changes), markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Discard and quit", id="discard", variant="error")
                yield Button("Keep editing", id="keep", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "discard")

    def key_escape(self) -> None:
        self.dismiss(False)
