from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from .base import StepScreen

MARKS = {"pending": "[dim]·[/]", "running": "[yellow]…[/]", "done": "[green]✔[/]",
         "failed": "[red]✖[/]", "skipped": "[dim]–[/]"}
LABELS = {"write": "write files", "nginx-test": "check nginx configuration (nginx -t)",
          "engine-ready": "wait until the model is loaded", "verify": "verify end to end",
          "acme": "certificate from Let's Encrypt", "rollback": "roll back",
          "recover": "repair an interrupted apply"}


def label(step: str) -> str:
    return LABELS.get(step, step.replace(".service", ""))


class ErrorDialog(ModalScreen[str]):
    """Why it failed, the log, and what next: Retry or Back (the old config is still live)."""

    def __init__(self, reason: str, log: str) -> None:
        super().__init__()
        self.reason, self.log_text = reason, log

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b red]Apply failed[/]: the previous configuration is still live.")
            yield Static(self.reason)
            with VerticalScroll():
                yield Static(self.log_text or "(no log)", classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Back", id="back")
                yield Button("Retry", id="retry", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id))


class ApplyScreen(StepScreen):
    STEP = "apply"
    NEXT_LABEL = "Continue"
    BACK = False

    def body(self) -> Iterable[Widget]:
        yield Static("Applying. The previous configuration stays live until each step is "
                     "verified.", classes="hint")
        yield Static("", id="steps")
        yield Static("", id="result")

    def on_mount(self) -> None:
        self.rows: dict[str, str] = {}
        self.query_one("#next", Button).disabled = True
        self._start()

    def _start(self) -> None:
        self.rows = {"write": "pending"}
        actions = [a for a in self.wizard.planned_actions
                   if not a.startswith("obtain") and a != "daemon-reload"]
        if any("nginx" in a for a in actions):
            self.rows["nginx-test"] = "pending"
        for action in actions:
            self.rows[action] = "pending"
            if action.startswith("restart"):
                self.rows["engine-ready"] = "pending"
        self.rows["verify"] = "pending"
        if self.draft.tls.mode == "letsencrypt":
            self.rows["acme"] = "pending"
        self._show_rows()
        answers = self.draft
        self.run_worker(lambda: self._apply(answers), thread=True, exit_on_error=False)

    def _show_rows(self) -> None:
        lines = [f" {MARKS[state]} {label(step)}" for step, state in self.rows.items()]
        self.query_one("#steps", Static).update("\n".join(lines))

    def _event(self, step: str, state: str, detail: str) -> None:
        if step in ("write-file", "apply") or step.startswith("acme-"):
            return
        if step == "daemon-reload":
            return
        self.rows[step] = "failed" if state == "failed" else state
        self._show_rows()

    def _apply(self, answers: Any) -> None:
        from appliance.errors import ApplianceError, ApplyError

        def emit(e: Any) -> None:
            self.app.call_from_thread(self._event, e.step, e.state, e.detail)

        try:
            result = self.wizard.session.apply(answers, emit)
        except ApplyError as exc:
            self.app.call_from_thread(self._failed, f"{exc.step}: {exc.reason}", exc.log_tail)
            return
        except ApplianceError as exc:
            self.app.call_from_thread(self._failed, str(exc), "")
            return
        self.app.call_from_thread(self._succeeded, result)

    def _finish_rows(self, running_state: str) -> None:
        for step, state in self.rows.items():
            if state == "running":
                self.rows[step] = running_state
            elif state == "pending":
                self.rows[step] = "skipped"
        self._show_rows()

    def _succeeded(self, result: Any) -> None:
        self.wizard.outcome = result
        self._finish_rows("done")
        tls = result.tls
        if tls is not None and tls.state not in ("issued", "reused"):
            self.rows["acme"] = "failed"
            self._show_rows()
            text = (f"[yellow]Applied, but Let's Encrypt failed:[/] {tls.message}\nThe "
                    "self-signed certificate keeps serving; the appliance retries on its own.")
        else:
            text = "[green b]Applied.[/]" if not result.noop else "[b]Nothing to change.[/]"
        self.query_one("#result", Static).update(text)
        self.query_one("#next", Button).disabled = False
        self.query_one("#next", Button).focus()

    def _failed(self, reason: str, log: str) -> None:
        self._finish_rows("failed")
        self.query_one("#result", Static).update(f"[red]{reason}[/]")

        def chosen(choice: str | None) -> None:
            if choice == "retry":
                self._start()
            else:
                self.wizard.goto("review")

        self.app.push_screen(ErrorDialog(reason, log), chosen)
