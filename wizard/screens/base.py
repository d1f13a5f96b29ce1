"""The frame every step shares: a step bar, a scrollable body, a button row, errors at fields.

Screens read and show; they never navigate or change the draft. Leaving a step posts
:class:`~wizard.screens.messages.Navigate` with the widget values as raw answers, and the app
(which owns the draft and runs the one schema gate) either moves on or calls
:meth:`StepScreen.show_errors`. Background work goes through :meth:`StepScreen.work`, so a
failing worker always ends in a message on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, RadioButton, RadioSet, Static

from .fields import locate, message
from .messages import Navigate

if TYPE_CHECKING:
    from appliance.answers.schema import Answers
    from appliance.errors import FieldError
    from appliance.session import Session

STEPS = ("status", "model", "performance", "tls", "key", "review", "apply", "done")
TITLES = {"status": "Status", "model": "Model", "performance": "Speed",
          "tls": "TLS", "key": "Key", "review": "Review", "apply": "Apply",
          "done": "Done"}
COMPACT_BELOW = 70
T = TypeVar("T")


class Host(Protocol):
    """What a screen may read from the app (the app alone writes it)."""

    session: Session
    draft: dict[str, Any]
    applied: Answers | None
    planned_actions: list[str]
    planned_notices: list[str]


def step_bar(current: str, width: int) -> str:
    """All steps, the current one marked in text; below 70 columns only "Step n of 8"."""
    n = STEPS.index(current) + 1
    if width < COMPACT_BELOW:
        return f"[b]Step {n} of {len(STEPS)}: {TITLES[current]}[/]"
    parts = []
    for i, step in enumerate(STEPS, 1):
        label = f"{i} {TITLES[step]}"
        parts.append(f"[b reverse]▸{label} [/]" if step == current else f"[dim]{label}[/]")
    return " ".join(parts)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe(exc: BaseException) -> str:
    """An exception as one line for the operator (our errors already read well)."""
    from appliance.errors import ApplianceError

    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, ApplianceError) else f"{type(exc).__name__}: {text}"


def field_error(widget_id: str) -> Static:
    """The line under a field where the gate's message for it appears."""
    return Static("", id=f"{widget_id}-error", classes="field-error", markup=False)


class FieldLabel(Static):
    """A field's name; "▸" marks the field that has the focus (in text, not only colour)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"  {text}", markup=False)
        self.text = text

    def mark(self, focused: bool) -> None:
        self.update(f"{'▸' if focused else ' '} {self.text}")


def field_row(label: str, *widgets: Widget) -> Horizontal:
    """One line of a form: the field's label, then its inputs and buttons."""
    return Horizontal(FieldLabel(label), *widgets, classes="row")


class Choice(RadioButton):
    """A radio button whose state is also text: ● when chosen, blank otherwise."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "●" if self.value else " "
        return super()._button


class Tick(Checkbox):
    """A checkbox whose state is also text: X when ticked, blank otherwise."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "X" if self.value else " "
        return super()._button


class Choices(RadioSet):
    """A radio set whose cursor starts on the chosen option, not the first one."""

    def on_mount(self) -> None:
        self.call_after_refresh(self._start_on_pressed)

    def _start_on_pressed(self) -> None:
        if self.pressed_index >= 0:
            self._selected = self.pressed_index


class StepScreen(Screen[None]):
    STEP = "status"
    NEXT_LABEL = "Next"
    BACK = True
    AUTO_FOCUS = "#next"
    BODY_FOCUS = False
    BINDINGS: ClassVar = [Binding("ctrl+n", "next", "Next"),
                          Binding("ctrl+r", "review", "Review")]

    def __init__(self, errors: list[FieldError] | None = None) -> None:
        super().__init__()
        self.pending_errors = list(errors or [])

    @on(events.Mount)
    def _show_pending_errors(self) -> None:
        # Focus now, before the first frame: a key typed as soon as the screen shows must
        # reach the field the operator sees focused (AUTO_FOCUS alone waits for the resume).
        for target in self.query(self.AUTO_FOCUS).results(Widget):
            if target.focusable:
                self.set_focus(target)
                break
        if self.pending_errors:
            self.call_after_refresh(self.show_errors, self.pending_errors)

    @on(events.DescendantFocus)
    def _mark_focused_field(self, event: events.DescendantFocus) -> None:
        before: Widget | None = None
        row = event.widget.parent
        if row is not None and row.has_class("row"):
            siblings = list(row.children)
            i = siblings.index(event.widget)
            before = siblings[i - 1] if i else None
        for label in self.query(FieldLabel).results(FieldLabel):
            label.mark(label is before)

    @property
    def host(self) -> Host:
        return cast(Host, self.app)

    @property
    def draft(self) -> dict[str, Any]:
        return self.host.draft

    def compose(self) -> ComposeResult:
        yield Static(step_bar(self.STEP, self.app.size.width), id="stepbar")
        with VerticalScroll(classes="body") as body:
            body.can_focus = self.BODY_FOCUS  # Tab goes from field to field, not to the frame
            yield from self.body()
        with Horizontal(classes="buttons"):
            yield from self.buttons()
        yield Footer()

    def on_resize(self) -> None:
        self.query_one("#stepbar", Static).update(step_bar(self.STEP, self.size.width))

    def body(self) -> Iterable[Widget]:
        return []

    def buttons(self) -> Iterable[Widget]:
        if self.BACK:
            yield Button("Back", id="back")
        yield Button(self.NEXT_LABEL, id="next", variant="primary")

    def values(self) -> dict[str, Any]:
        """This screen's widget values as raw answers (the gate checks them, not the screen)."""
        return {}

    def proceed(self, answers: Answers) -> bool:
        """Called by the app once the gate passed: False keeps the operator here (the screen
        posts Navigate again when it is ready, e.g. after a DNS check)."""
        return True

    # Handlers are bound by selector: Textual runs every class's on_* handler along the MRO,
    # so an override plus super() would act twice.
    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.app.post_message(Navigate(self.STEP, self.values(), "back"))

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.forward()

    def forward(self) -> None:
        """What Next does: ask the app for the next step."""
        self.app.post_message(Navigate(self.STEP, self.values(), "next"))

    def action_next(self) -> None:
        """Ctrl+N does what the Next button does, and nothing while it is disabled."""
        buttons = self.query("#next").results(Button)
        if any(not b.disabled for b in buttons):
            self.forward()

    def action_review(self) -> None:
        """Ctrl+R: straight to Review (through the gate, like Next)."""
        if self.STEP in STEPS[:5]:
            self.app.post_message(Navigate(self.STEP, self.values(), "review"))

    # -- errors at their fields ---------------------------------------------------------------
    def show_errors(self, errors: list[FieldError]) -> None:
        """Each error under its field, the first field focused and scrolled into view."""
        for label in self.query(".field-error").results(Static):
            label.update("")
            label.remove_class("shown")
        self.query(".invalid").remove_class("invalid")
        texts: dict[str, list[str]] = {}
        for e in errors:
            texts.setdefault(locate(e.field)[1], []).append(f"✖ {e.field}: {message(e)}")
        first: Widget | None = None
        for wid, lines in texts.items():
            labels = self.query(f"#{wid}-error").results(Static)
            for label in labels:
                label.update("\n".join(lines))
                label.add_class("shown")
            widgets = list(self.query(f"#{wid}"))
            if widgets:
                widgets[0].add_class("invalid")
                first = first or widgets[0]
        if first is not None:
            first.focus()
            self.call_after_refresh(self._reveal, first)

    def _reveal(self, widget: Widget) -> None:
        for label in self.query(f"#{widget.id}-error"):
            label.scroll_visible(animate=False)
        widget.scroll_visible(animate=False)

    # -- background work ------------------------------------------------------------------
    def work(self, job: Callable[[], T], done: Callable[[T], None],
             failed: Callable[[str], None], group: str = "default") -> None:
        """Run ``job`` in a thread; its value goes to ``done``, any exception to ``failed`` as
        one line, on the UI thread. Nothing a worker raises can leave a screen stuck."""
        def run() -> None:
            try:
                value = job()
            except Exception as exc:  # every failure reaches the operator
                self.app.call_from_thread(failed, describe(exc))
                return
            self.app.call_from_thread(done, value)

        self.run_worker(run, thread=True, exit_on_error=False, group=group)
