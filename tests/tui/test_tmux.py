"""The real `wizard` binary in tmux at 80x24 over the sandbox stack, driven by keys."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import GEMMA, SMOLLM, Stack, wizard

# A server of our own: others' tmux sessions (and their server exiting) cannot interfere.
TMUX = ["tmux", "-L", f"wizard-tests-{os.getpid()}"]
pytestmark = [pytest.mark.stack,
              pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")]


def screen(session: str) -> str:
    return subprocess.run([*TMUX, "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True, check=True).stdout


def wait_text(session: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = screen(session)
        if text in shown:
            return shown
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared:\n{screen(session)}")


class Keys:
    """Sends keys one per send-keys (a burst can reach the app as one unparsed escape
    sequence) and counts them."""

    def __init__(self, session: str) -> None:
        self.session, self.count = session, 0

    def __call__(self, *keys: str) -> None:
        for key in keys:
            subprocess.run([*TMUX, "send-keys", "-t", self.session, key], check=True)
            self.count += 1
            time.sleep(0.05)
        time.sleep(0.1)


def wait_focus(session: str, label: str) -> None:
    """Wait until the field named ``label`` has the focus (the wizard marks it with "▸"):
    keys typed faster than the app handles them could otherwise reach a widget before a
    pending focus change does."""
    wait_text(session, f"▸ {label}", timeout=30)


def wait_field(session: str, label: str, value: str) -> None:
    """Wait until the field on the row showing ``label`` shows ``value`` (typed keys have all
    arrived before the next command key reads the field)."""
    pattern = re.compile(re.escape(label) + r"\s+" + re.escape(value) + r"(\s|$)")
    wait_text_match(session, pattern)


def type_into(name: str, keys: Keys, label: str, text: str, then: str,
              clear: str | None = None) -> None:
    """Once ``label``'s box has the focus, type ``text`` (after ``clear``), wait until the box
    shows it, then press ``then``."""
    wait_focus(name, label)
    keys(*([clear] if clear else []), *text)
    wait_field(name, label, text)
    keys(then)


def wait_text_match(session: str, pattern: re.Pattern[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(pattern.search(row) for row in screen(session).splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"{pattern.pattern!r} never appeared:\n{screen(session)}")


def exited(session: str) -> bool:
    dead = subprocess.run([*TMUX, "display-message", "-p", "-t", session, "#{pane_dead}"],
                          capture_output=True, text=True)
    return dead.returncode != 0 or dead.stdout.strip() == "1"


@pytest.fixture
def tui(fresh: Stack) -> Iterator[tuple[str, Keys, float]]:
    """The wizard in an 80x24 tmux pane that stays after exit (to read the summary); yields
    the session name, a key sender and the start-up time to the first full status."""
    name = f"wizard-{fresh.port_base}"
    cmd = f"{sys.executable} -m wizard --root {fresh.root}"
    started = time.monotonic()
    subprocess.run([*TMUX, "new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmd],
                   check=True)
    subprocess.run([*TMUX, "set-option", "-t", name, "remain-on-exit", "on"], check=True)
    try:
        shown = wait_text(name, "Endpoint")
        startup = time.monotonic() - started
        assert "ready" in shown and all(len(line) <= 80 for line in shown.splitlines())
        yield name, Keys(name), startup
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)


def status(stack: Stack) -> dict[str, object]:
    return json.loads(wizard("--root", str(stack.root), "status", "--json", check=True).stdout)


def test_model_and_threads_change_in_a_few_keys(fresh: Stack, tui: tuple[str, Keys, float]
                                                ) -> None:
    name, keys, startup = tui
    keys("C-n")
    wait_text(name, "Trained ctx")
    keys("Down")  # smollm2 -> gemma3, the next row of the catalog
    wait_text(name, f"▶ {GEMMA}")
    keys("C-n")
    wait_focus(name, "Threads")
    keys("1")  # the threads box has focus and its text is selected: typing replaces it
    wait_field(name, "Threads", "1")
    keys("C-r")
    review = wait_text(name, "Exact diff")
    lines = review.splitlines()
    top = "\n".join(lines[:8])
    assert "Model" in top and GEMMA[:6] in top and "Threads" in top and "1" in top, review
    keys("a")
    wait_text(name, "Applied.", timeout=120)
    pressed = keys.count
    print(f"\nkeys to change model and threads and apply: {pressed}; start-up to status: "
          f"{startup:.2f} s")
    assert pressed <= 12
    keys("C-n")
    wait_text(name, "Laptop")
    keys("C-n")
    deadline = time.monotonic() + 15
    while not exited(name):
        assert time.monotonic() < deadline, "the wizard did not exit on Finish"
        time.sleep(0.1)
    after = screen(name)
    assert "Endpoint :" in after and "Next steps" in after, after
    s = status(fresh)
    assert s["threads"] == 1 and s["model"] == GEMMA and s["ready"] is True


def _out_of_range_then_fixed(name: str, keys: Keys, label: str, error: str, good: str) -> None:
    """0 in the field ``label``: Next shows ``error`` naming it; then ``good`` moves on."""
    type_into(name, keys, label, "0", "C-n")
    shown = wait_text(name, error)
    assert label in shown and "out of range" in shown
    type_into(name, keys, label, good, "C-n", clear="BSpace")


def test_bad_values_keep_the_operator_on_their_screen(fresh: Stack,
                                                      tui: tuple[str, Keys, float]) -> None:
    name, keys, _ = tui
    pid = fresh.services.pid(fresh.engine_unit())
    keys("C-n")
    wait_text(name, "Trained ctx")
    keys("Tab")
    _out_of_range_then_fixed(name, keys, "Context tokens", "model.context_size", "4096")
    wait_focus(name, "Threads")
    keys("Tab")
    _out_of_range_then_fixed(name, keys, "Parallel slots", "✖ parallel", "1")
    wait_text(name, "Let's Encrypt for a domain")
    keys("Down", "space", "Tab")
    type_into(name, keys, "Domain", "llm.test", "Tab")
    type_into(name, keys, "E-mail", "ops-at-example", "C-n")
    shown = wait_text(name, "tls.email")
    assert "not an e-mail address" in shown and "Domain" in shown
    keys("C-q")
    wait_text(name, "Quit without applying?")
    keys("BTab", "Enter")  # from "Keep editing" to "Discard and quit"
    deadline = time.monotonic() + 15
    while not exited(name):
        assert time.monotonic() < deadline, "the wizard did not exit"
        time.sleep(0.1)
    applied = fresh.layout.map(fresh.layout.applied_answers)
    ok = wizard("--root", str(fresh.root), "--validate", str(applied))
    assert ok.returncode == 0, ok.stderr
    assert fresh.services.pid(fresh.engine_unit()) == pid
    assert status(fresh)["model"] == SMOLLM


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
        subprocess.run([*TMUX, "new-session", "-d", "-s", name, "-x", "80", "-y", "24", login],
                       check=True)
        try:
            shown = wait_text(name, "Configure" if expect_wizard else "LOGIN-DONE")
            assert "SLM appliance" in shown or expect_wizard
            if expect_wizard:
                Keys(name)("C-q")
                wait_text(name, "LOGIN-DONE")
                marker.touch()  # as Finish does
        finally:
            subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)
    marker.unlink()
