"""Step 6: what an apply would change, in plain words first (one line per change), then the
exact diff. Apply is its own button (and the A key), never the Next key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Button, Static

from appliance.answers.context import RULE

from .base import StepScreen
from .fields import changed_fields, gate
from .messages import ApplyRequested, Refused, Reviewed


def diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "bold" if line.startswith(("+++", "---")) else
                 "cyan" if line.startswith("@@") else "")
        text.append(line + "\n", style=style)
    return text


def plain_lines(review: Any, before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
    """One line per change, in words: the core's summary when it gives one, else the answers
    that change and the services that restart."""
    lines = list(getattr(review, "summary", None) or [])
    if not lines:
        lines = changed_fields(before, after)
        lines += [f"Service: {a}" for a in review.actions if a != "daemon-reload"]
    return lines


class ReviewScreen(StepScreen):
    STEP = "review"
    AUTO_FOCUS = ".body"  # the text scrolls with PgDn/arrows; Enter applies nothing
    BODY_FOCUS = True
    BINDINGS: ClassVar = [Binding("a", "apply", "Apply"),
                          Binding("ctrl+n", "next", "Next", show=False)]

    def body(self) -> Iterable[Widget]:
        yield Static("Working out what would change...", id="summary")
        yield Static("", id="diff")

    def buttons(self) -> Iterable[Widget]:
        yield Button("Back", id="back")
        yield Button("Apply (A)", id="apply", variant="success", disabled=True)

    def on_mount(self) -> None:
        answers, errors = gate(self.draft)
        if answers is None:  # the app never comes here with errors; say so if it ever did
            self._failed("; ".join(str(e) for e in errors))
            return
        self._after = answers.to_dict()
        self.work(lambda: self._review(answers), self._show, self._failed)

    def _review(self, answers: Any) -> Any:
        from appliance.errors import AnswersError

        try:
            return self.host.session.review(answers)
        except AnswersError as exc:  # the machine checks: shown at the field, like the gate's
            return exc

    def _show(self, review: Any) -> None:
        from appliance.errors import AnswersError

        if isinstance(review, AnswersError):
            self._failed("\n".join(f"✖ {e}" for e in review.errors))
            self.app.post_message(Refused(review.errors))
            return
        notices = [str(line) for line in getattr(review, "summary", [])
                   if getattr(line, "notice", False)]
        self.app.post_message(Reviewed(review.actions, notices))
        if review.empty:
            summary = ("[b]Nothing to change[/]: the running configuration already matches.")
        else:
            before = self.host.applied.to_dict() if self.host.applied else {}
            lines = "\n".join(
                f" • [yellow]{escape(str(line))}[/]" if getattr(line, "notice", False)
                else f" • {escape(str(line))}"
                for line in plain_lines(review, before, self._after))
            warn = "".join(f"\n[yellow]warning: {w}[/]" for w in review.warnings)
            files = ", ".join(f.rsplit("/", 1)[-1] for f in review.files)
            summary = (f"[b]What changes[/]\n{lines}{warn}\n[dim]{RULE}[/]\n[b]Exact diff[/] "
                       f"({len(review.files)} files: {files}; PgDn scrolls)")
        self.query_one("#summary", Static).update(summary)
        self.query_one("#diff", Static).update(diff_text(review.diff))
        self.query_one("#apply", Button).disabled = False

    def _failed(self, error: str) -> None:
        self.query_one("#summary", Static).update(
            f"[red]Could not work out the changes:[/] {error}\nBack to fix, or try again.")

    def action_next(self) -> None:
        self.notify("Review never applies on Next: press A or the Apply button.")

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        if not self.query_one("#apply", Button).disabled:
            self.app.post_message(ApplyRequested())
