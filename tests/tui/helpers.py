"""Build the wizard exactly as the CLI does, and wait for screens without sleeping blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from textual.pilot import Pilot

from appliance.apply.runtime import make_context
from appliance.host.facts import detect
from appliance.host.paths import Layout
from appliance.host.site import load_site
from appliance.session import Session
from wizard.app import WizardApp


def make_app(root: Path) -> WizardApp:
    layout = Layout(root)
    site = load_site(layout)
    facts = detect()

    return WizardApp(Session(layout, site, facts, partial(make_context, layout, site,
                                                          facts=facts)))


async def wait_for(pilot: Pilot[int], check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting on screen {pilot.app.screen!r}")
        await pilot.pause(0.05)


async def next_step(pilot: Pilot[int], expect: str) -> None:
    """Once Next is enabled, press its key (a click can land before the new screen's layout)
    and wait for the ``expect`` step."""
    from textual.widgets import Button

    app = pilot.app
    await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: getattr(app, "step", None) == expect
                   and type(app.screen).__name__.lower().startswith(expect[:4]))
    await pilot.pause()


async def press(pilot: Pilot[int], selector: str) -> None:
    """Press a button of the current screen by its own action (no mouse: a click can land
    before a new layout is in place)."""
    from textual.widgets import Button

    pilot.app.screen.query_one(selector, Button).press()
    await pilot.pause()


async def choose(pilot: Pilot[int], selector: str) -> None:
    """Turn on a radio button or checkbox of the current screen."""
    from textual.widgets._toggle_button import ToggleButton

    pilot.app.screen.query_one(selector, ToggleButton).value = True
    await pilot.pause()


async def wait_dialog(pilot: Pilot[int], name: str, button: str) -> None:
    """Wait until the dialog class ``name`` is pushed and composed (its ``button`` exists)."""
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == name
                   and bool(pilot.app.screen.query(button)))
