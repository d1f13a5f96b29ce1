"""The real `wizard` binary in tmux at 80x24, driven by keys through a threads change."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import Stack, wizard

pytestmark = pytest.mark.stack


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True, check=True).stdout


def wait_text(session: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = screen(session)
        if text in shown:
            return shown
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared:\n{screen(session)}")


def keys(session: str, *k: str) -> None:
    """One key per send-keys: a burst can reach the app as one unparsed escape sequence."""
    for key in k:
        subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
        time.sleep(0.05)
    time.sleep(0.1)


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_threads_change_by_keyboard_in_tmux(fresh: Stack) -> None:
    name = f"wizard-{fresh.port_base}"
    cmd = f"{sys.executable} -m wizard --root {fresh.root}"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmd],
                   check=True)
    try:
        wait_text(name, "Configure")  # the first frame; the state fills in from a worker
        shown = wait_text(name, "Endpoint")
        assert "ready" in shown and all(len(line) <= 80 for line in shown.splitlines())
        keys(name, "C-n")
        wait_text(name, "Trained ctx")
        keys(name, "C-n")
        wait_text(name, "Parallel slots")
        keys(name, "End", *["BSpace"] * 6, "1")
        assert "▊  1 " in wait_text(name, "Threads")
        for marker in ("Let's Encrypt for a domain", "Keep this key", "llama-server"):
            keys(name, "C-n")
            wait_text(name, marker)
        keys(name, "C-n")
        wait_text(name, "Applied.")
        keys(name, "C-n")
        wait_text(name, "OpenAI Python")
        keys(name, "C-n")
        deadline = time.monotonic() + 10
        while subprocess.run(["tmux", "has-session", "-t", name]).returncode == 0:
            assert time.monotonic() < deadline, "the wizard did not exit on Finish"
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    s = json.loads(wizard("--root", str(fresh.root), "status", "--json", check=True).stdout)
    assert s["threads"] == 1 and s["ready"] is True


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_first_interactive_login_starts_the_wizard_once(stack: Stack) -> None:
    banner = stack.root / "etc/profile.d/slm-appliance.sh"
    marker = stack.root / "var/lib/slm-appliance/wizard.done"
    marker.unlink(missing_ok=True)
    # Without a terminal: the banner prints nothing and starts nothing.
    p = subprocess.run(["bash", "-c", f"source {banner}; echo sourced"], capture_output=True,
                       text=True, timeout=30)
    assert p.stdout == "sourced\n" and p.stderr == ""
    name = f"login-{stack.port_base}"
    login = f"bash --norc -i -c 'source {banner}; echo LOGIN-DONE; sleep 30'"
    for expect_wizard in (True, False):
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", login],
                       check=True)
        try:
            shown = wait_text(name, "Configure" if expect_wizard else "LOGIN-DONE")
            assert "SLM appliance" in shown or expect_wizard
            if expect_wizard:
                keys(name, "C-q")
                wait_text(name, "LOGIN-DONE")
                marker.touch()  # as Finish does
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    marker.unlink()
