"""The frame every step shares: a one-line step bar, a scrollable body, a button row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Static

if TYPE_CHECKING:
    from appliance.answers.schema import Answers

    from ..app import WizardApp


def step_bar(current: str) -> str:
    from ..app import STEPS, TITLES

    parts = []
    for n, step in enumerate(STEPS, 1):
        label = f"{n} {TITLES[step]}"
        parts.append(f"[b reverse] {label} [/]" if step == current else f"[dim]{label}[/]")
    return " ".join(parts)


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


class StepScreen(Screen[None]):
    STEP = "status"
    NEXT_LABEL = "Next"
    BACK = True
    AUTO_FOCUS = "#next"
    BINDINGS: ClassVar = [Binding("ctrl+n", "next", "Next")]

    @property
    def wizard(self) -> WizardApp:
        return cast("WizardApp", self.app)

    @property
    def draft(self) -> Answers:
        assert self.wizard.draft is not None
        return self.wizard.draft

    def compose(self) -> ComposeResult:
        yield Static(step_bar(self.STEP), id="stepbar")
        with VerticalScroll(classes="body"):
            yield from self.body()
        with Horizontal(classes="buttons"):
            yield from self.buttons()
        yield Footer()

    def body(self) -> Iterable[Widget]:
        return []

    def buttons(self) -> Iterable[Widget]:
        if self.BACK:
            yield Button("Back", id="back")
        yield Button(self.NEXT_LABEL, id="next", variant="primary")

    # Handlers are bound by selector: Textual runs every class's on_* handler along the MRO,
    # so an override plus super() would act twice.
    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.wizard.action_go_back()

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        from appliance.errors import AnswersError

        try:
            ok = self.leave()
        except AnswersError as exc:  # the draft goes through the schema: stay on this screen
            self.notify("\n".join(str(e) for e in exc.errors), severity="error", timeout=10)
            return
        if ok:
            self.wizard.next_step()

    def action_next(self) -> None:
        """Ctrl+N does what the Next button does, and nothing while it is disabled."""
        if not self.query_one("#next", Button).disabled:
            self._next()

    def leave(self) -> bool:
        """Read widgets into the draft; False keeps the operator on this screen."""
        return True
