from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Button, Static

from appliance.answers.context import RULE

from .base import StepScreen


def diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "bold" if line.startswith(("+++", "---")) else
                 "cyan" if line.startswith("@@") else "")
        text.append(line + "\n", style=style)
    return text


class ReviewScreen(StepScreen):
    STEP = "review"
    NEXT_LABEL = "Apply"

    def body(self) -> Iterable[Widget]:
        yield Static("Working out what would change...", id="summary")
        yield Static("", id="diff")

    def on_mount(self) -> None:
        self.query_one("#next", Button).disabled = True
        answers = self.draft
        self.run_worker(lambda: self._load(answers), thread=True, exit_on_error=False)

    def _load(self, answers: Any) -> None:
        from appliance.errors import AnswersError

        try:
            review = self.wizard.session.review(answers)
        except AnswersError as exc:
            lines = "\n".join(f"[red]-[/] {e}" for e in exc.errors)
            self.app.call_from_thread(self._show, f"[red b]Fix these first:[/]\n{lines}", "",
                                      False)
            return
        self.wizard.planned_actions = review.actions
        if review.empty:
            self.app.call_from_thread(self._show, "[b]Nothing to change[/]: the running "
                                      "configuration already matches.", "", True)
            return
        actions = "\n".join(f"  - {a}" for a in review.actions) or "  (none)"
        files = "\n".join(f"  - {f}" for f in review.files)
        warn = "".join(f"\n[yellow]warning: {w}[/]" for w in review.warnings)
        summary = (f"[b]Services[/]\n{actions}\n[b]Files[/] ({len(review.files)})\n{files}"
                   f"{warn}\n[dim]{RULE}[/]\n[b]Diff[/]")
        self.app.call_from_thread(self._show, summary, review.diff, True)

    def _show(self, summary: str, diff: str, ok: bool) -> None:
        self.query_one("#summary", Static).update(summary)
        self.query_one("#diff", Static).update(diff_text(diff))
        self.query_one("#next", Button).disabled = not ok
