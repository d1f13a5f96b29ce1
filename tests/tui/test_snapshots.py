"""Every screen at 80x24 (an OpenNebula VNC console), frozen as SVG snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from tests.tui.fake import fake_app
from tests.tui.helpers import next_step, wait_for

SIZE = (80, 24)
ORDER = ["model", "performance", "tls", "key", "review"]


def goto(step: str) -> Any:
    async def run_before(pilot: Pilot[int]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.draft is not None)  # type: ignore[attr-defined]
        for s in ORDER[: ORDER.index(step) + 1] if step in ORDER else []:
            await next_step(pilot, s)
        if step == "review":
            await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
        await pilot.pause()
    return run_before


@pytest.mark.parametrize("step", ["status", *ORDER])
def test_screen(snap_compare: Any, step: str) -> None:
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=goto(step))


async def press_and_wait(pilot: Pilot[int], button: str, shows: str, text: str) -> None:
    """Press a button, wait until widget ``shows`` says ``text``, and let the press fade."""
    await pilot.click(button)
    widget = pilot.app.screen.query_one(shows, Static)
    await wait_for(pilot, lambda: text in str(widget.render()))
    await pilot.pause(0.5)  # a pressed button stays highlighted for 0.2 s


def test_performance_after_benchmark(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("performance")(pilot)
        await press_and_wait(pilot, "#bench", "#note", "generation")
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)


def test_tls_with_dns_check(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("tls")(pilot)
        await pilot.click("#letsencrypt")
        pilot.app.screen.query_one("#domain", Input).value = "llm.example.com"
        await press_and_wait(pilot, "#check", "#checks", "points here")
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)


def test_apply_and_done(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await goto("review")(pilot)
        await next_step(pilot, "apply")
        await wait_for(pilot, lambda: not pilot.app.screen.query_one("#next", Button).disabled)
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)

    async def to_done(pilot: Pilot[int]) -> None:
        await run_before(pilot)
        await next_step(pilot, "done")
        await pilot.pause()
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=to_done)


def test_error_dialog(snap_compare: Any) -> None:
    from wizard.screens.apply import ErrorDialog

    async def run_before(pilot: Pilot[int]) -> None:
        await goto("status")(pilot)
        pilot.app.push_screen(ErrorDialog(
            "nginx-test: nginx rejected the new configuration",
            "nginx: [emerg] bind() to 198.51.100.7:443 failed (99: Cannot assign requested "
            "address)\nnginx: configuration file /etc/nginx/nginx.conf test failed"))
        await pilot.pause()
    assert snap_compare(fake_app(), terminal_size=SIZE, run_before=run_before)


@pytest.mark.asyncio
@pytest.mark.parametrize("step", ["status", *ORDER])
async def test_resize_never_crashes(step: str) -> None:
    app = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        await goto(step)(pilot)
        for size in ((60, 16), (120, 40), (80, 24), (40, 10)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
        assert app.screen.query_one("#next", Button)
        assert app.return_code is None  # still running


def test_status_text_shows_certificate_state() -> None:
    from tests.tui.fake import STATUS
    from wizard.screens.status import status_text

    info = {**STATUS, "tls_mode": "letsencrypt", "tls_domain": "llm.example.com",
            "acme": {"last_renewal": {"at": "2027-01-10T12:00:00+00:00", "result": "issued"},
                     "last_error": "the CA could not connect to http://llm.example.com/",
                     "next_attempt": "2027-03-01T12:10:00+00:00"}}
    text = status_text(info)
    assert "letsencrypt for llm.example.com, expires 2036-11-23" in text
    assert "Renewed[/]    2027-01-10T12:00 (issued)" in text
    assert "next attempt 2027-03-01T12:10" in text
    assert "Not configured" in status_text({"configured": False})
