"""The first-boot wizard: a Textual app that collects answers and shows progress.

The app owns the draft and navigation. The draft is a raw answers mapping built from the
screens' widget values; every step forward sends it through the one schema gate, and each
:class:`~appliance.errors.FieldError` is shown at its field on its screen. A plan (Review,
Apply) is only ever built from answers that passed the gate. Screens post messages
(``wizard.screens.messages``); this module imports the screens, never the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding

from .screens import SCREENS
from .screens import messages as msg
from .screens.base import STEPS, StepScreen
from .screens.dialogs import ConfirmQuit
from .screens.fields import changed_fields, first_step, gate, merge, on_step

if TYPE_CHECKING:
    from appliance.answers.schema import Answers
    from appliance.errors import FieldError
    from appliance.session import Session

EDITABLE = STEPS[1:5]  # model .. key: the steps whose widgets hold answers


class WizardApp(App[int]):
    """Screens are created per visit; the draft lives here between them."""

    CSS_PATH = "wizard.tcss"
    TITLE = "SLM appliance setup"
    BINDINGS: ClassVar = [Binding("ctrl+q", "quit", "Quit", priority=True),
                          Binding("escape", "go_back", "Back")]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.draft: dict[str, Any] = {}
        self.applied: Answers | None = None  # what runs now (or the defaults, never applied)
        self.stored_problems: list[FieldError] = []
        self.planned_actions: list[str] = []
        self.planned_notices: list[str] = []
        self.step = "status"
        self.applying = False
        self.quit_when_applied = False
        self.exit_summary: str | None = None  # printed by the CLI once the screen is restored

    def on_mount(self) -> None:
        self.push_screen(SCREENS["status"]())

    # -- the draft ---------------------------------------------------------------------------
    def current_draft(self) -> dict[str, Any]:
        """The draft including what the current screen holds but has not sent yet."""
        screen = self.screen
        values = screen.values() if isinstance(screen, StepScreen) else {}
        return merge(self.draft, values)

    def unapplied_changes(self) -> list[str]:
        """What the draft changes compared with what runs (empty: nothing to lose)."""
        if self.applied is None:
            return []
        draft = self.current_draft()
        answers, _ = gate(draft)
        return changed_fields(self.applied.to_dict(), answers.to_dict() if answers else draft)

    @on(msg.StateRead)
    def _state_read(self, m: msg.StateRead) -> None:
        if not self.draft:
            self.applied = m.answers
            self.draft = m.answers.to_dict()
            self.stored_problems = m.problems

    # -- navigation --------------------------------------------------------------------------
    def goto(self, step: str, errors: list[FieldError] | None = None) -> None:
        self.step = step
        self.switch_screen(SCREENS[step](errors or []))

    @on(msg.Navigate)
    def _navigate(self, m: msg.Navigate) -> None:
        if m.step != self.step:
            return  # a late message from a screen that is already gone
        self.draft = merge(self.draft, m.values)
        i = STEPS.index(m.step)
        if m.to == "back":
            if m.step in (*EDITABLE, "review"):
                self.goto(STEPS[i - 1])
            return
        if not self.draft:
            self.notify("Still reading the current state", severity="warning")
            return
        target = STEPS[i + 1] if m.to == "next" else m.to
        answers, errors = gate(self.draft)
        here = on_step(m.step, errors)
        screen = self.screen
        if here and isinstance(screen, StepScreen):
            screen.show_errors(here)
            return
        if answers is not None and isinstance(screen, StepScreen) and not screen.proceed(answers):
            return
        if STEPS.index(target) >= STEPS.index("review") and errors:
            fix = first_step(errors, STEPS) or "status"
            self.goto(fix, on_step(fix, errors) or errors)
            return
        self.goto(target, on_step(target, errors))

    def action_go_back(self) -> None:
        screen = self.screen
        if isinstance(screen, StepScreen):
            self.post_message(msg.Navigate(self.step, screen.values(), "back"))

    @on(msg.Reviewed)
    def _reviewed(self, m: msg.Reviewed) -> None:
        self.planned_actions, self.planned_notices = m.actions, m.notices

    @on(msg.Refused)
    def _refused(self, m: msg.Refused) -> None:
        fix = first_step(m.errors, EDITABLE)
        if fix is not None and self.step == "review":
            self.goto(fix, on_step(fix, m.errors))

    @on(msg.ApplyRequested)
    def _apply_requested(self) -> None:
        if self.step == "review":
            self.goto("apply")

    @on(msg.ApplyStarted)
    def _apply_started(self) -> None:
        self.applying = True

    @on(msg.ApplyFinished)
    def _apply_finished(self, m: msg.ApplyFinished) -> None:
        self.applying = False
        if m.result is not None:
            answers, _ = gate(self.draft)
            self.applied = answers or self.applied
        if self.quit_when_applied:
            self.exit(0)

    @on(msg.RetryApply)
    def _retry(self) -> None:
        self.goto("apply")

    @on(msg.BackToReview)
    def _back_to_review(self) -> None:
        self.goto("review")

    # -- leaving -----------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Never quits in the middle of an apply; asks before dropping changes not applied."""
        if self.applying:
            self.quit_when_applied = True
            self.notify("An apply is running: the wizard quits as soon as it has finished "
                        "(it is never left half-done).", title="Quitting after the apply",
                        timeout=30)
            return
        if isinstance(self.screen, ConfirmQuit):
            return
        changes = self.unapplied_changes() if self.step in (*EDITABLE, "review") else []
        if not changes:
            self.exit(0)
            return

        def chosen(discard: bool | None) -> None:
            if discard:
                self.exit(0)

        self.push_screen(ConfirmQuit(changes), chosen)

    @on(msg.QuitRequested)
    async def _quit_requested(self) -> None:
        await self.action_quit()

    @on(msg.Finished)
    def _finished(self, m: msg.Finished) -> None:
        self.session.mark_done()
        self.exit_summary = m.summary
        self.exit(0)
