"""Every screen at 80x24 (an OpenNebula VNC console) and with an error showing at 80x24 and
60x20, frozen as SVG snapshots over a session with fixed data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from tests.tui.fake import FailingSession, FakeSession, fake_app
from tests.tui.helpers import ORDER, choose, next_step, press, wait_dialog, wait_for
from wizard.app import WizardApp

SIZE = (80, 24)
SMALL = (60, 20)
Before = Callable[[Pilot[int]], Awaitable[None]]


def goto(step: str) -> Before:
    async def run_before(pilot: Pilot[int]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: bool(app.draft))  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: "Reading" not in str(app.screen.query_one(
            "#status", Static).render()))
        for s in ORDER[: ORDER.index(step) + 1] if step in ORDER else []:
            await next_step(pilot, s)
        if step == "review":
            await wait_for(pilot, lambda: "Working" not in str(app.screen.query_one(
                "#summary", Static).render()))
        await pilot.pause()
    return run_before


@pytest.mark.parametrize("step", ["status", *ORDER])
def test_screen(snap_compare: Any, step: str) -> None:
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=goto(step))


async def press_and_wait(pilot: Pilot[int], button: str, shows: str, text: str) -> None:
    """Press a button, wait until widget ``shows`` says ``text``, and let the press fade."""
    await press(pilot, button)
    widget = pilot.app.screen.query_one(shows, Static)
    await wait_for(pilot, lambda: text in str(widget.render()))
    await pilot.pause(0.5)  # a pressed button stays highlighted for 0.2 s


def test_performance_after_benchmark(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("performance")(pilot)
        await press_and_wait(pilot, "#bench", "#note", "generation")
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)


def test_performance_after_autotune(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("performance")(pilot)
        await press_and_wait(pilot, "#tune", "#note", "Best")
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)


def test_tls_with_dns_check(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("tls")(pilot)
        await choose(pilot, "#letsencrypt")
        pilot.app.screen.query_one("#domain", Input).value = "llm.example.com"
        await press_and_wait(pilot, "#check", "#checks", "Point the domain")
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)


async def _apply(pilot: Pilot[int]) -> None:
    await goto("review")(pilot)
    await pilot.press("a")
    await wait_for(pilot, lambda: pilot.app.step == "apply")  # type: ignore[attr-defined]


def test_apply_and_done(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await _apply(pilot)
        await wait_for(pilot, lambda: not pilot.app.screen.query_one("#next", Button).disabled)
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)

    async def to_done(pilot: Pilot[int]) -> None:
        await run_before(pilot)
        await next_step(pilot, "done")
        await wait_for(pilot, lambda: "Endpoint" in str(pilot.app.screen.query_one(
            "#summary", Static).render()))
        await pilot.pause()
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=to_done)


# -- every screen with an error showing, at 80x24 and 60x20 -------------------------------------
def field(step: str, widget: str, value: str) -> Before:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto(step)(pilot)
        pilot.app.screen.query_one(widget, Input).value = value
        await pilot.press("ctrl+n")
        label = pilot.app.screen.query_one(f"{widget}-error", Static)
        await wait_for(pilot, lambda: "✖" in str(label.render()))
        await pilot.pause()
    return run_before


def failing(step: str, selector: str, text: str) -> Before:
    async def run_before(pilot: Pilot[int]) -> None:
        if step == "apply":
            await _apply(pilot)
            await wait_dialog(pilot, "ErrorDialog", "#retry")
        elif step == "done":
            await _apply(pilot)
            await next_step(pilot, "done")
        else:
            await goto(step)(pilot)
        widget = pilot.app.screen.query_one(selector, Static)
        await wait_for(pilot, lambda: text in str(widget.render()))
        await pilot.pause()
    return run_before


class ReviewFails(FakeSession):
    def review(self, answers: Any) -> Any:
        raise OSError(5, "Input/output error", "/etc/nginx/nginx.conf")


ERRORS: dict[str, tuple[Callable[[], WizardApp], Before]] = {
    "status": (lambda: WizardApp(FailingSession("answers", "status")),
               failing("status", "#status-error", "parallel")),
    "model": (fake_app, field("model", "#context", "0")),
    "performance": (fake_app, field("performance", "#parallel", "0")),
    "tls": (fake_app, field("tls", "#email", "ops-at-example")),
    "review": (lambda: WizardApp(ReviewFails()),
               failing("review", "#summary", "Could not work out")),
    "apply": (lambda: WizardApp(FailingSession("lock")),
              failing("apply", ".reason", "another apply")),
    "done": (lambda: WizardApp(FailingSession("done")),
             failing("done", "#summary", "Could not read")),
}


@pytest.mark.parametrize("size", [SIZE, SMALL], ids=["80x24", "60x20"])
@pytest.mark.parametrize("step", list(ERRORS))
def test_error_showing(snap_compare: Any, step: str, size: tuple[int, int]) -> None:
    make, run_before = ERRORS[step]
    assert snap_compare(make(), terminal_size=size, run_before=run_before)


def test_quit_confirmation_fits_60x20(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("performance")(pilot)
        pilot.app.screen.query_one("#threads", Input).value = "2"
        await pilot.press("ctrl+q")
        await wait_dialog(pilot, "ConfirmQuit", "#keep")
        await pilot.pause()
    assert snap_compare(fake_app(), terminal_size=SMALL, run_before=run_before)


@pytest.mark.asyncio
@pytest.mark.parametrize("step", ["status", *ORDER])
async def test_resize_never_crashes(step: str) -> None:
    app = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        await goto(step)(pilot)
        for size in ((60, 16), (120, 40), (80, 24), (40, 10)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
        assert app.return_code is None  # still running


def test_status_text_shows_certificate_state() -> None:
    from tests.tui.fake import STATUS
    from wizard.screens.status import status_text

    info = {**STATUS, "tls_mode": "letsencrypt", "tls_domain": "llm.example.com",
            "acme": {"last_renewal": {"at": "2027-01-10T12:00:00+00:00", "result": "issued"}}}
    text = status_text(info)
    assert "letsencrypt for llm.example.com, expires 2036-11-23" in text
    assert "Renewed[/]    2027-01-10T12:00 (issued)" in text
    pending = {**STATUS, "tls_pending": {
        "domain": "llm.invalid", "state": "waiting", "next_attempt": "2027-03-01T12:10:00+00:00",
        "last_error": "llm.invalid does not resolve"}}
    text = status_text(pending)
    assert "Let's Encrypt for llm.invalid: waiting; the current certificate keeps serving" in text
    assert "Last error: llm.invalid does not resolve. Next attempt 2027-03-01T12:10." in text
    assert "Not configured" in status_text({"configured": False})
