"""What screens tell the app. Screens never navigate or change the draft themselves: they post
one of these and the app (which owns navigation and the draft) decides. Screens import this
module, the app imports screens; nothing here imports the app."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class Navigate(Message):
    """Leave this step: ``values`` are the screen's widget values as raw answers (unvalidated);
    ``to`` is "next", "back" or a step name. Going forward, the app runs the gate first."""

    def __init__(self, step: str, values: dict[str, Any], to: str) -> None:
        super().__init__()
        self.step, self.values, self.to = step, values, to


class Reviewed(Message):
    """Review worked out what an apply would do; the Apply screen lists these actions and
    repeats the lines that need attention (e.g. how long the engine restart takes)."""

    def __init__(self, actions: list[str], notices: list[str]) -> None:
        super().__init__()
        self.actions, self.notices = actions, notices


class ApplyRequested(Message):
    """The operator pressed Apply on Review (its own button, never the Next key)."""


class ApplyStarted(Message):
    """An apply is running: quitting now must wait for its outcome."""


class ApplyFinished(Message):
    """The apply ended: ``result`` on success, else ``error`` (the reason shown)."""

    def __init__(self, result: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.result, self.error = result, error


class RetryApply(Message):
    """The operator chose Retry in the failure dialog."""


class BackToReview(Message):
    """The operator chose Back in the failure dialog."""


class QuitRequested(Message):
    """Quit (the Status screen's button); the app confirms if the draft is not applied."""


class Finished(Message):
    """Done's Finish: mark the wizard done, exit and print the summary."""

    def __init__(self, summary: str) -> None:
        super().__init__()
        self.summary = summary


class StateRead(Message):
    """Status read what runs: the answers to start the draft from, and what was wrong with
    the stored answers file (those fields start from the defaults)."""

    def __init__(self, answers: Any, problems: list[Any]) -> None:
        super().__init__()
        self.answers, self.problems = answers, problems


class Refused(Message):
    """The machine checks refused the answers (e.g. a model file missing, too little RAM):
    the app takes the operator to the field."""

    def __init__(self, errors: list[Any]) -> None:
        super().__init__()
        self.errors = errors
