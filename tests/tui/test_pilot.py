"""Wizard flows driven with Textual's Pilot against the real sandbox stack (nginx, engine)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.broken_model import broken_model
from tests.conftest import GEMMA, SMOLLM, Stack, tree_hashes, wizard
from tests.tui.helpers import (
    letsencrypt,
    make_app,
    next_step,
    press,
    to,
    wait_dialog,
    wait_enabled,
    wait_for,
)

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]
SIZE = (80, 24)


def status(stack: Stack) -> dict[str, object]:
    return json.loads(wizard("--root", str(stack.root), "status", "--json").stdout)


def shown(pilot: Pilot[int], selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


async def _review(pilot: Pilot[int]) -> str:
    """Straight to Review (Ctrl+R) and wait until it shows what would change."""
    await pilot.press("ctrl+r")
    await wait_enabled(pilot, "#apply", step="review")
    return shown(pilot, "#summary")


async def _review_with(pilot: Pilot[int], step: str, field: str, value: str) -> str:
    """Next to ``step``, type ``value`` into ``field``, then :func:`_review`."""
    await to(pilot, step)
    pilot.app.screen.query_one(field, Input).value = value
    return await _review(pilot)


async def _apply(pilot: Pilot[int]) -> str:
    await pilot.press("a")
    await wait_enabled(pilot, "#next", step="apply")
    return shown(pilot, "#result")


async def _finish(pilot: Pilot[int]) -> None:
    await next_step(pilot, "done")
    await wait_for(pilot, lambda: "Endpoint" in shown(pilot, "#summary"))
    await press(pilot, "#next")


async def test_change_threads_then_the_copied_curl_snippet_runs(fresh: Stack) -> None:
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        summary = await _review_with(pilot, "performance", "#threads", "1")
        first = summary.split("Exact diff")[0]
        assert "Threads" in first and "-> 1" in first
        assert "Applied" in await _apply(pilot)
        await next_step(pilot, "done")
        await wait_for(pilot, lambda: "Endpoint" in shown(pilot, "#summary"))
        await pilot.press("c")  # the curl tab is shown first
        snippet = app.clipboard
        await press(pilot, "#next")
    assert app.return_code == 0 and app.exit_summary and "Next steps" in app.exit_summary
    run = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, timeout=120)
    reply = json.loads(run.stdout)
    assert reply["choices"][0]["message"]["content"] and reply["usage"]["completion_tokens"] <= 64
    saved = fresh.root / "etc/slm-appliance/client-setup.txt"
    assert snippet in saved.read_text() and saved.stat().st_mode & 0o777 == 0o600
    s = status(fresh)
    assert s["threads"] == 1 and s["ready"] is True
    assert (fresh.root / "var/lib/slm-appliance/wizard.done").exists()


async def test_change_model_names_the_base_model(fresh: Stack) -> None:
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await to(pilot, "model")
        table = app.screen.query_one("#models", DataTable)
        rows = [str(k.value) for k in table.rows]
        table.move_cursor(row=rows.index(GEMMA))
        await wait_for(pilot, lambda: "Base model" in shown(pilot, "#model-hint"))
        summary = await _review(pilot)
        assert GEMMA in summary.split("Exact diff")[0]
        assert "--chat-template gemma" in shown(pilot, "#diff")
        assert "Applied" in await _apply(pilot)
    assert status(fresh)["model"] == GEMMA


async def test_domain_that_does_not_point_here(fresh: Stack) -> None:
    before = status(fresh)
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await letsencrypt(pilot, "elsewhere.test")
        await pilot.press("ctrl+n")  # leaving checks DNS first
        await wait_for(pilot, lambda: "Point the domain" in shown(pilot, "#checks"))
        assert "192.0.2.77" in shown(pilot, "#checks") and app.step == "tls"
        await pilot.press("ctrl+n")  # seen: Next again continues
        await wait_for(pilot, lambda: app.step == "key")
        await _review(pilot)
        result = await _apply(pilot)
        assert "Let's Encrypt failed" in result and "keeps serving" in result
    s = status(fresh)
    assert s["tls_not_after"] == before["tls_not_after"] and s["ready"]


async def test_quit_after_review_asks_and_changes_nothing(fresh: Stack) -> None:
    before = tree_hashes(fresh.root)
    pids = fresh.services.pid(fresh.engine_unit())
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await _review_with(pilot, "performance", "#threads", "1")
        assert "--threads 1" in shown(pilot, "#diff")
        await pilot.press("ctrl+q")
        await wait_dialog(pilot, "ConfirmQuit", "#discard")
        await press(pilot, "#discard")
    assert app.return_code == 0
    assert tree_hashes(fresh.root) == before
    assert fresh.services.pid(fresh.engine_unit()) == pids


async def test_ctrl_q_during_apply_waits_and_leaves_no_journal(fresh: Stack) -> None:
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await _review_with(pilot, "performance", "#threads", "1")
        await pilot.press("a")
        await wait_for(pilot, lambda: app.applying)
        await pilot.press("ctrl+q")
        assert app.return_code is None  # waits for the outcome
        await wait_for(pilot, lambda: app.return_code is not None, timeout=180)
    assert not (fresh.root / "var/lib/slm-appliance/journal").exists()
    assert status(fresh)["threads"] == 1


async def test_a_hand_broken_applied_file_opens_and_is_repaired(fresh: Stack) -> None:
    applied = fresh.layout.map(fresh.layout.applied_answers)
    applied.write_text(re.sub(r"(?m)^parallel: \d+$", "parallel: 0", applied.read_text()))
    app = make_app(fresh.root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "parallel" in shown(pilot, "#status-error"))
        assert "out of range" in shown(pilot, "#status-error")
        await wait_for(pilot, lambda: bool(app.draft))
        await _review(pilot)
        assert "Applied" in await _apply(pilot) or "Nothing" in shown(pilot, "#result")
    ok = wizard("--root", str(fresh.root), "--validate", str(applied))
    assert ok.returncode == 0, ok.stderr


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
            await to(pilot, "model")
            screen = app.screen
            screen.query_one("#url", Input).value = (
                f"http://127.0.0.1:{srv.server_address[1]}/my-model.gguf")
            screen.query_one("#sha", Input).value = sha
            await press(pilot, "#download")
            await wait_for(pilot, lambda: "verified" in shown(pilot, "#note"))
            assert screen.query_one("#path", Input).value == (
                "/opt/slm-appliance/models/my-model.gguf")
            await _review(pilot)
            assert "Applied" in await _apply(pilot)
        assert status(fresh)["model"] == "my-model"
    finally:
        srv.shutdown()
        srv.server_close()
        fresh.baseline()
        target.unlink(missing_ok=True)


async def test_failed_apply_shows_the_cause_and_keeps_the_old_config(fresh: Stack) -> None:
    from wizard.screens.dialogs import ErrorDialog

    with broken_model(fresh) as path:
        before = tree_hashes(fresh.root)
        app = make_app(fresh.root)
        async with app.run_test(size=SIZE) as pilot:
            await _review_with(pilot, "model", "#path", path)
            await pilot.press("a")
            await wait_dialog(pilot, "ErrorDialog", "#back")
            dialog = app.screen
            assert isinstance(dialog, ErrorDialog)
            assert "llama-server" in dialog.reason
            assert "model loading error" in dialog.log_text
            await press(pilot, "#back")
            await wait_for(pilot, lambda: app.step == "review")
            assert not app.applying
        assert tree_hashes(fresh.root) == before
        with fresh.client() as c:
            r = c.get("/v1/models", headers=fresh.auth())
            assert r.json()["data"][0]["id"] == SMOLLM
