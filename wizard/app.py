"""The first-boot wizard: a Textual app that collects answers and shows progress.

All work happens in the core through :class:`appliance.session.Session`; screens only read
widgets into a draft :class:`appliance.answers.Answers` and render events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding

if TYPE_CHECKING:
    from appliance.answers.schema import Answers
    from appliance.session import Session

STEPS = ("status", "model", "performance", "tls", "key", "review", "apply", "done")
TITLES = {"status": "Status", "model": "Model", "performance": "Speed",
          "tls": "TLS", "key": "Key", "review": "Review", "apply": "Apply",
          "done": "Done"}


class WizardApp(App[int]):
    """Screens are created per visit; the draft answers live here between them."""

    CSS_PATH = "wizard.tcss"
    TITLE = "SLM appliance setup"
    BINDINGS: ClassVar = [Binding("ctrl+q", "quit", "Quit", priority=True),
                          Binding("escape", "go_back", "Back")]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.draft: Answers | None = None
        self.outcome: Any = None  # the ApplyResult of the last apply
        self.planned_actions: list[str] = []  # from the review, shown as pending steps
        self.step = "status"

    def on_mount(self) -> None:
        self.push_screen(self._make("status"))

    def _make(self, step: str) -> Any:
        from .screens import SCREENS

        return SCREENS[step]()

    def goto(self, step: str) -> None:
        self.step = step
        self.switch_screen(self._make(step))

    def next_step(self) -> None:
        i = STEPS.index(self.step)
        self.goto(STEPS[min(i + 1, len(STEPS) - 1)])

    def action_go_back(self) -> None:
        i = STEPS.index(self.step)
        if self.step in ("apply", "done", "status"):
            return
        self.goto(STEPS[max(i - 1, 0)])
