"""The Key screen against the real sandbox stack: add a named key (its secret shown once works
at the endpoint), revoke it (refused at once), the engine never restarts."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select, Static

from tests.conftest import Stack
from tests.tui.helpers import make_app, next_step, press, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]
SIZE = (80, 24)


def _status(stack: Stack, secret: str) -> int:
    with stack.client() as c:
        return c.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code


async def test_key_screen_adds_and_revokes_a_named_key(stack: Stack) -> None:
    stack.baseline()
    pid = stack.services.pid(stack.engine_unit())
    app = make_app(stack.root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.draft))
        for step in ("model", "performance", "tls", "key"):
            await next_step(pilot, step)
        screen = app.screen
        screen.query_one("#key-name", Input).value = "tui-ide"
        screen.query_one("#key-rpm", Input).value = "30"
        await press(pilot, "#key-add")
        new = screen.query_one("#key-new", Static)
        await wait_for(pilot, lambda: "added" in str(new.render()))
        text = str(new.render())
        secret = text.splitlines()[1].strip()
        assert "curl" in text and secret in text and len(secret) >= 43
        assert _status(stack, secret) == 200
        screen.query_one("#key-pick", Select).value = "tui-ide"
        await press(pilot, "#key-revoke")
        await wait_for(pilot, lambda: "revoked" in str(new.render()))
        assert _status(stack, secret) == 401
        # A bad name: the core's message at the field, nothing added.
        screen.query_one("#key-name", Input).value = "Bad Name"
        await press(pilot, "#key-add")
        error = screen.query_one("#key-name-error", Static)
        await wait_for(pilot, lambda: "not a valid key name" in str(error.render()))
    assert stack.services.pid(stack.engine_unit()) == pid
