"""Step 7: the apply, step by step. The app knows an apply is running (quitting waits for it);
a failure opens a dialog with the cause first, the log, and Retry or Back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widget import Widget
from textual.widgets import Button, Static

from .base import StepScreen
from .dialogs import ErrorDialog
from .fields import gate
from .messages import ApplyFinished, ApplyStarted, BackToReview, RetryApply

MARKS = {"pending": "[dim]·[/]", "running": "[yellow]…[/]", "done": "[green]✔[/]",
         "failed": "[red]✖[/]", "skipped": "[dim]–[/]"}
LABELS = {"write": "write files", "nginx-test": "check nginx configuration (nginx -t)",
          "engine-ready": "wait until the model is loaded", "verify": "verify end to end",
          "acme": "certificate from Let's Encrypt", "rollback": "roll back",
          "recover": "repair an interrupted apply"}
HIDDEN = ("write-file", "apply", "daemon-reload")


def label(step: str) -> str:
    return LABELS.get(step, step.replace(".service", ""))


def planned_rows(actions: list[str], letsencrypt: bool) -> dict[str, str]:
    """The steps the Review announced, all pending."""
    rows = {"write": "pending"}
    actions = [a for a in actions if not a.startswith("obtain") and a not in HIDDEN]
    if any("nginx" in a for a in actions):
        rows["nginx-test"] = "pending"
    for action in actions:
        rows[action] = "pending"
        if action.startswith("restart"):
            rows["engine-ready"] = "pending"
    rows["verify"] = "pending"
    if letsencrypt:
        rows["acme"] = "pending"
    return rows


class ApplyScreen(StepScreen):
    STEP = "apply"
    NEXT_LABEL = "Continue"
    BACK = False

    def body(self) -> Iterable[Widget]:
        notices = "".join(f"\n{n}" for n in self.host.planned_notices)
        yield Static("Applying. Each step is checked; if one fails, the previous configuration "
                     f"is restored. Ctrl+Q waits until this has finished.{notices}",
                     classes="hint", markup=False)
        yield Static("", id="steps")
        yield Static("", id="result")

    def on_mount(self) -> None:
        self.query_one("#next", Button).disabled = True
        answers, errors = gate(self.draft)
        if answers is None:
            self._failed("the answers did not pass the schema", "\n".join(map(str, errors)))
            return
        self.rows = planned_rows(self.host.planned_actions, answers.tls.mode == "letsencrypt")
        self._show_rows()
        self.app.post_message(ApplyStarted())
        self.work(lambda: self._apply(answers), self._succeeded,
                  lambda error: self._failed(error, ""), group="apply")

    def _apply(self, answers: Any) -> Any:
        from appliance.errors import ApplyError, LockedError

        def emit(e: Any) -> None:
            self.app.call_from_thread(self._event, e.step, str(e.state), e.detail)

        try:
            return self.host.session.apply(answers, emit)
        except (ApplyError, LockedError) as exc:  # the step and the log, shown in the dialog
            return exc

    def _show_rows(self) -> None:
        lines = [f" {MARKS[state]} {label(step)}" for step, state in self.rows.items()]
        self.query_one("#steps", Static).update("\n".join(lines))

    def _event(self, step: str, state: str, detail: str) -> None:
        if step in HIDDEN or step.startswith("acme-"):
            return
        self.rows[step] = state.rsplit(".", 1)[-1].lower()
        if self.rows[step] not in MARKS:
            self.rows[step] = "running"
        self._show_rows()

    def _finish_rows(self, running_state: str) -> None:
        for step, state in self.rows.items():
            if state == "running":
                self.rows[step] = running_state
            elif state == "pending":
                self.rows[step] = "skipped"
        self._show_rows()

    def _succeeded(self, result: Any) -> None:
        from appliance.errors import ApplyError, LockedError

        if isinstance(result, LockedError):  # nothing started, nothing to restore
            self._failed(str(result), "", "Nothing was changed")
            return
        if isinstance(result, ApplyError):
            restored = ("the previous configuration is restored" if result.rolled_back else
                        "ROLLBACK INCOMPLETE: see the log")
            self._failed(f"{result.step}: {result.reason}\n({restored})", result.log_tail)
            return
        self.app.post_message(ApplyFinished(result=result))
        self._finish_rows("done")
        tls = result.tls
        if tls is not None and str(tls.state).rsplit(".", 1)[-1].lower() not in (
                "issued", "reused", "skipped"):
            self.rows["acme"] = "failed"
            self._show_rows()
            text = (f"[yellow]Applied, but Let's Encrypt failed:[/] {tls.message}\nThe "
                    "current certificate keeps serving and the endpoint keeps its address; "
                    "the appliance retries on its own (see Status).")
        else:
            text = "[green b]Applied.[/]" if not result.noop else "[b]Nothing to change.[/]"
        self.query_one("#result", Static).update(text)
        button = self.query_one("#next", Button)
        button.disabled = False
        button.focus()

    def _failed(self, reason: str, log: str, title: str = "Apply failed") -> None:
        self.app.post_message(ApplyFinished(error=reason))
        self._finish_rows("failed")
        self.query_one("#result", Static).update(f"[red]{reason}[/]")

        def chosen(choice: str | None) -> None:
            self.app.post_message(RetryApply() if choice == "retry" else BackToReview())

        self.app.push_screen(ErrorDialog(title, reason, log), chosen)
