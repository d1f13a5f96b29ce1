"""Wizard flows driven with Textual's Pilot against the real sandbox stack (nginx, engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, RadioButton, Static

from tests.conftest import GEMMA, Stack, tree_hashes, wizard
from tests.tui.helpers import make_app, next_step, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]
SIZE = (80, 24)


def status(stack: Stack) -> dict[str, object]:
    return json.loads(wizard("--root", str(stack.root), "status", "--json").stdout)


async def _to(pilot, step: str) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_for(pilot, lambda: app.draft is not None)
    order = ["model", "performance", "tls", "key", "review"]
    for s in order[: order.index(step) + 1]:
        await next_step(pilot, s)


async def _apply_and_finish(pilot) -> str:  # type: ignore[no-untyped-def]
    app = pilot.app
    await next_step(pilot, "apply")
    await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
    result = str(app.screen.query_one("#result", Static).render())
    await next_step(pilot, "done")
    await wait_for(pilot, lambda: "Endpoint" in str(app.screen.query_one("#summary",
                                                                          Static).render()))
    await pilot.click("#next")
    return result


async def test_change_threads(fresh: Stack) -> None:
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await _to(pilot, "performance")
        threads = app.screen.query_one("#threads", Input)
        threads.value = ""
        await pilot.click("#threads")
        await pilot.press("1")
        await _to_review_from(pilot, "performance")
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "llama-server" in summary
        assert "Applied" in await _apply_and_finish(pilot)
    assert app.return_code == 0
    s = status(fresh)
    assert s["threads"] == 1 and s["ready"] is True
    assert (fresh.root / "var/lib/slm-appliance/wizard.done").exists()


async def _to_review_from(pilot, step: str) -> None:  # type: ignore[no-untyped-def]
    order = ["model", "performance", "tls", "key", "review"]
    for s in order[order.index(step) + 1:]:
        await next_step(pilot, s)
    await wait_for(pilot, lambda: not pilot.app.screen.query_one("#next", Button).disabled)


async def test_change_model(fresh: Stack) -> None:
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await _to(pilot, "model")
        table = app.screen.query_one("#models", DataTable)
        rows = [str(k.value) for k in table.rows]
        table.move_cursor(row=rows.index(GEMMA))
        await pilot.pause()
        await _to_review_from(pilot, "model")
        assert "--chat-template gemma" in str(app.screen.query_one("#diff", Static).render())
        assert "Applied" in await _apply_and_finish(pilot)
    assert status(fresh)["model"] == GEMMA


async def test_domain_with_acme_failure_falls_back_to_self_signed(fresh: Stack) -> None:
    before = status(fresh)["tls_not_after"]
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await _to(pilot, "tls")
        await pilot.click("#letsencrypt")
        await pilot.click("#domain")
        await pilot.press(*"elsewhere.test")
        await pilot.click("#check")
        checks = app.screen.query_one("#checks", Static)
        await wait_for(pilot, lambda: "resolves to" in str(checks.render()))
        assert "192.0.2.77" in str(checks.render())
        assert app.screen.query_one("#letsencrypt", RadioButton).value
        await _to_review_from(pilot, "tls")
        result = await _apply_and_finish(pilot)
        assert "Let's Encrypt failed" in result and "self-signed" in result
    s = status(fresh)
    assert s["tls_mode"] == "self-signed" and s["tls_not_after"] == before and s["ready"]


async def test_cancel_on_review_changes_nothing(fresh: Stack) -> None:
    before = tree_hashes(fresh.root)
    pids = fresh.services.pid(fresh.engine_unit())
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await _to(pilot, "performance")
        app.screen.query_one("#threads", Input).value = "1"
        await _to_review_from(pilot, "performance")
        assert "--threads 1" in str(app.screen.query_one("#diff", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.step == "key")
        await pilot.press("ctrl+q")
    assert tree_hashes(fresh.root) == before
    assert fresh.services.pid(fresh.engine_unit()) == pids


async def test_download_a_custom_model_by_url_and_switch(fresh: Stack, tmp_path: Path) -> None:
    import functools
    import hashlib
    import http.server
    import shutil
    import threading

    src = fresh.root / "opt/slm-appliance/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(src, served / "my-model.gguf")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    target = fresh.root / "opt/slm-appliance/models/my-model.gguf"
    try:
        app = make_app(fresh.root)
        async with app.run_test(size=SIZE) as pilot:
            await _to(pilot, "model")
            screen = app.screen
            screen.query_one("#url", Input).value = (
                f"http://127.0.0.1:{srv.server_address[1]}/my-model.gguf")
            screen.query_one("#sha", Input).value = sha
            await pilot.click("#download")
            note = screen.query_one("#note", Static)
            await wait_for(pilot, lambda: "verified" in str(note.render()))
            path = screen.query_one("#path", Input).value
            assert path == "/opt/slm-appliance/models/my-model.gguf"
            await _to_review_from(pilot, "model")
            assert "Applied" in await _apply_and_finish(pilot)
        assert status(fresh)["model"] == "my-model"
    finally:
        srv.shutdown()
        srv.server_close()
        fresh.baseline()
        target.unlink(missing_ok=True)


async def test_failed_apply_shows_the_reason_and_keeps_the_old_config(fresh: Stack) -> None:
    from wizard.screens.apply import ErrorDialog

    models = fresh.root / "opt/slm-appliance/models"
    good = (models / "SmolLM2-135M-Instruct.Q4_1.gguf").read_bytes()
    (models / "broken.gguf").write_bytes(good[: 4 * 1024 * 1024])  # header fine, tensors cut
    before = tree_hashes(fresh.root)
    try:
        app = make_app(fresh.root)
        async with app.run_test(size=SIZE) as pilot:
            await _to(pilot, "model")
            app.screen.query_one("#path", Input).value = "/opt/slm-appliance/models/broken.gguf"
            await _to_review_from(pilot, "model")
            await next_step(pilot, "apply")
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog)
                           and bool(app.screen.query("#back")))  # pushed and composed
            dialog = app.screen
            # at start or while loading, depending on how fast the engine reads the cut file;
            # a switch starts the idle instance (either unit), a restart the serving one
            assert dialog.reason.startswith(("restart llama-server", "start llama-server",
                                             "engine-ready: llama-server")), dialog.reason
            assert "model loading error" in dialog.log_text
            await pilot.click("#back")
            await wait_for(pilot, lambda: app.step == "review")
            await pilot.press("ctrl+q")
        assert tree_hashes(fresh.root) == before
        with fresh.client() as c:
            r = c.get("/v1/models", headers=fresh.auth())
            assert r.json()["data"][0]["id"] == "smollm2-135m-instruct-q4_1"
    finally:
        (models / "broken.gguf").unlink()
