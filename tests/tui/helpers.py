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

ORDER = ["model", "performance", "tls", "key", "review"]
"""The wizard's steps after Status, in the order Next walks them."""


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


async def wait_enabled(pilot: Pilot[int], button: str, step: str | None = None) -> None:
    """Wait until the current screen (at ``step``, when given) has ``button`` enabled: its
    own work (a review, an apply) is done."""
    from textual.widgets import Button

    app = pilot.app
    await wait_for(pilot, lambda: (step is None or getattr(app, "step", None) == step)
                   and not app.screen.query_one(button, Button).disabled)


async def next_step(pilot: Pilot[int], expect: str) -> None:
    """Once Next is enabled, press its key (a click can land before the new screen's layout)
    and wait for the ``expect`` step."""
    app = pilot.app
    await wait_enabled(pilot, "#next")
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: getattr(app, "step", None) == expect
                   and type(app.screen).__name__.lower().startswith(expect[:4]))
    await pilot.pause()


async def to(pilot: Pilot[int], step: str) -> None:
    """From the Status screen, Next through every step up to ``step``."""
    await wait_for(pilot, lambda: bool(getattr(pilot.app, "draft", None)))
    for s in ORDER[: ORDER.index(step) + 1]:
        await next_step(pilot, s)


async def letsencrypt(pilot: Pilot[int], domain: str) -> None:
    """On the TLS step, Let's Encrypt for ``domain`` (not yet left, so not yet checked)."""
    from textual.widgets import Input

    await to(pilot, "tls")
    await choose(pilot, "#letsencrypt")
    pilot.app.screen.query_one("#domain", Input).value = domain


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
