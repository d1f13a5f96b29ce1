"""Every worker's failure reaches the operator, errors show at their field, quitting is safe.

Fast Pilot tests on a session with fixed data (tests/tui/fake.py); the same flows against the
real stack are in test_pilot.py and test_tmux.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from appliance.answers.schema import Answers
from appliance.apply.runtime import Event
from appliance.apply.transaction import ApplyResult
from tests.tui.fake import FailingSession, FakeSession
from tests.tui.helpers import letsencrypt, next_step, press, to, wait_dialog, wait_enabled, wait_for
from wizard.app import WizardApp
from wizard.screens.dialogs import ConfirmQuit

pytestmark = pytest.mark.asyncio
SIZE = (80, 24)


def text(widget: Widget) -> str:
    return str(widget.render())


def shown(pilot: Pilot[int], selector: str) -> str:
    return text(pilot.app.screen.query_one(selector, Static))


def visible(pilot: Pilot[int], widget: Widget) -> bool:
    """On screen now, without scrolling (the compositor only maps what is in view)."""
    return widget in pilot.app.screen._compositor.visible_widgets


async def reviewed(pilot: Pilot[int], *keys: str) -> None:
    """Next up to Review, wait until it can apply, then press ``keys``."""
    await to(pilot, "review")
    await wait_enabled(pilot, "#apply")
    await pilot.press(*keys)


async def wait_text(pilot: Pilot[int], selector: str, want: str) -> str:
    await wait_for(pilot, lambda: want in shown(pilot, selector), timeout=10)
    return shown(pilot, selector)


# -- worker failures --------------------------------------------------------------------------
async def test_status_read_failure_is_shown_and_configure_still_works() -> None:
    app = WizardApp(FailingSession("status"))
    async with app.run_test(size=SIZE) as pilot:
        out = await wait_text(pilot, "#status", "Could not read the current state")
        assert "Permission denied" in out
        assert app.screen.query_one("#reread", Button).display
        await next_step(pilot, "model")


async def test_broken_stored_answers_open_from_defaults_and_say_what_to_fix() -> None:
    app = WizardApp(FailingSession("answers"))
    async with app.run_test(size=SIZE) as pilot:
        out = await wait_text(pilot, "#status-error", "parallel")
        assert "0 is out of range 1-16" in out and "use 1-16" in out
        assert app.draft["parallel"] == 1
        await next_step(pilot, "model")


async def test_dns_check_failure_is_shown() -> None:
    app = WizardApp(FailingSession("dns"))
    async with app.run_test(size=SIZE) as pilot:
        await letsencrypt(pilot, "llm.example.com")
        await press(pilot, "#check")
        assert "resolver did not answer" in await wait_text(pilot, "#checks", "DNS check failed")


async def test_leaving_tls_checks_dns_and_shows_this_vms_address() -> None:
    app = WizardApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await letsencrypt(pilot, "llm.example.com")
        await press(pilot, "#next")
        out = await wait_text(pilot, "#checks", "Point the domain")
        assert "10.0.0.5" in out and "127.0.0.1" not in out.split("Point")[1]
        assert app.step == "tls"  # a failed check keeps the operator here once
        await pilot.press("ctrl+n")  # Next again continues: the operator has seen it
        await wait_for(pilot, lambda: app.step == "key")


@pytest.mark.parametrize(("kind", "step", "button", "heading", "detail", "refocused"), [
    ("bench", "performance", "#bench", "Benchmark failed", "HTTP 503", True),
    ("tune", "performance", "#tune", "Auto-tune failed", "engine exited", True),
    ("download", "model", "#download", "Download failed", "sha256 mismatch", False),
])
async def test_a_worker_failure_is_shown_and_its_button_works_again(
        kind: str, step: str, button: str, heading: str, detail: str, refocused: bool) -> None:
    app = WizardApp(FailingSession(kind))
    async with app.run_test(size=SIZE) as pilot:
        await to(pilot, step)
        await press(pilot, button)
        assert detail in await wait_text(pilot, "#note", heading)
        pressed = app.screen.query_one(button, Button)
        if refocused:  # Enter measures again, not Back
            await wait_for(pilot, lambda: app.focused is pressed)
        assert not pressed.disabled


async def test_lock_busy_opens_the_dialog_saying_nothing_changed() -> None:
    app = WizardApp(FailingSession("lock"))
    async with app.run_test(size=SIZE) as pilot:
        await reviewed(pilot, "a")
        await wait_dialog(pilot, "ErrorDialog", "#back")
        assert "another apply is running" in app.screen.reason  # type: ignore[attr-defined]
        await press(pilot, "#back")
        await wait_for(pilot, lambda: app.step == "review")
        assert not app.applying


async def test_done_failure_is_shown() -> None:
    app = WizardApp(FailingSession("done"))
    async with app.run_test(size=SIZE) as pilot:
        await reviewed(pilot, "a")
        await wait_for(pilot, lambda: app.step == "apply")
        await next_step(pilot, "done")
        assert "No space left" in await wait_text(pilot, "#summary", "Could not read")


# -- errors at their field --------------------------------------------------------------------
@pytest.mark.parametrize(("step", "widget", "value", "field"), [
    ("model", "#context", "0", "model.context_size"),
    ("performance", "#parallel", "0", "parallel"),
    ("performance", "#threads", "many", "threads"),
    ("tls", "#email", "ops-at-example", "tls.email"),
])
async def test_an_error_stays_on_its_screen_at_its_field(step: str, widget: str, value: str,
                                                         field: str) -> None:
    app = WizardApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await to(pilot, step)
        box = app.screen.query_one(widget, Input)
        box.value = value
        await pilot.press("ctrl+n")
        label = app.screen.query_one(f"{widget}-error", Static)
        await wait_for(pilot, lambda: field in text(label))
        await pilot.pause()
        assert app.step == step and app.focused is box
        assert visible(pilot, label) and visible(pilot, box)
        await pilot.press("ctrl+r")  # Review cannot be reached while the error remains
        await pilot.pause()
        assert app.step == step and field in text(label)


async def test_an_error_on_an_earlier_screen_brings_the_operator_back_there() -> None:
    app = WizardApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await to(pilot, "model")
        app.screen.query_one("#context", Input).value = "256"
        await next_step(pilot, "performance")
        app.screen.query_one("#parallel", Input).value = "4"  # 64 tokens per slot
        await pilot.press("ctrl+r")
        label = app.screen.query_one("#parallel-error", Static)
        await wait_for(pilot, lambda: "tokens of context each" in text(label))
        assert app.step == "performance"


# -- quitting ---------------------------------------------------------------------------------
async def test_quit_with_unapplied_changes_asks_first() -> None:
    app = WizardApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await to(pilot, "performance")
        app.screen.query_one("#threads", Input).value = "2"
        await pilot.press("ctrl+q")
        await wait_dialog(pilot, "ConfirmQuit", "#keep")
        assert "Threads 4 -> 2" in app.screen.changes  # type: ignore[attr-defined]
        await press(pilot, "#keep")
        await wait_for(pilot, lambda: app.step == "performance"
                       and not isinstance(app.screen, ConfirmQuit))
        await pilot.press("ctrl+q")
        await wait_dialog(pilot, "ConfirmQuit", "#keep")
        await press(pilot, "#discard")
    assert app.return_code == 0


async def test_quit_without_changes_does_not_ask() -> None:
    app = WizardApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await to(pilot, "performance")
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


class SlowApply(FakeSession):
    """An apply that runs until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def apply(self, answers: Answers, emit: Callable[[Event], None]) -> ApplyResult:
        self.started.set()
        self.release.wait(30)
        return super().apply(answers, emit)


async def test_ctrl_q_during_apply_waits_for_the_outcome() -> None:
    session = SlowApply()
    app = WizardApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await reviewed(pilot, "a")
        await wait_for(pilot, session.started.is_set)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code is None and app.quit_when_applied  # still running
        session.release.set()
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


async def test_review_never_applies_on_next() -> None:
    calls: list[Any] = []

    class Counting(FakeSession):
        def apply(self, answers: Answers, emit: Callable[[Event], None]) -> ApplyResult:
            calls.append(answers)
            return super().apply(answers, emit)

    app = WizardApp(Counting())
    async with app.run_test(size=SIZE) as pilot:
        await reviewed(pilot, "ctrl+n", "enter")
        await pilot.pause()
        assert app.step == "review" and not calls


async def test_cursor_starts_on_the_chosen_option_and_the_choice_is_marked_in_text() -> None:
    from wizard.screens.base import Choices

    app = WizardApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await letsencrypt(pilot, "llm.example.com")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.step == "performance")
        await next_step(pilot, "tls")
        mode = app.screen.query_one("#mode", Choices)
        await wait_for(pilot, lambda: mode._selected == 1)
        assert mode.pressed_index == 1
        assert "●" in str(app.screen.query_one("#letsencrypt").render())
        assert "●" not in str(app.screen.query_one("#self-signed").render())
        assert app.screen.query_one("#domain", Input).value == "llm.example.com"  # kept
