"""Step 1: what runs now. Reads the state and the answers to start from in a worker; a failed
read or a broken stored answers file is shown here, never a screen stuck on "Reading"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import on
from textual.widget import Widget
from textual.widgets import Button, Static

from .base import StepScreen, describe, field_error
from .fields import message
from .messages import QuitRequested, StateRead

if TYPE_CHECKING:
    from appliance.answers.schema import Answers
    from appliance.errors import FieldError
    from appliance.session import Session


def status_text(s: dict[str, Any]) -> str:
    if not s.get("configured"):
        return "[b]Not configured yet.[/] Continue to choose a model and apply."
    ready = "[green]ready[/]" if s.get("ready") else "[red]not ready[/]"
    services = ", ".join(f"{u.removesuffix('.service')} {'running' if a else '[red]stopped[/]'}"
                         for u, a in (s.get("services") or {}).items())
    tls = s.get("tls_mode") or "?"
    acme = s.get("acme") or {}
    if s.get("tls_domain") and s.get("tls_mode") == "letsencrypt":
        tls += f" for {s['tls_domain']}"
    lines = [
        f"[b]Endpoint[/]   {s.get('endpoint')}   {ready}",
        f"[b]Engine[/]     {s.get('engine')} ({services})",
        f"[b]Model[/]      {s.get('model')}",
        f"[b]Threads[/]    {s.get('threads')}    [b]Context[/] {s.get('context_size')} tokens"
        f"    [b]Slots[/] {s.get('parallel')}",
        f"[b]TLS[/]        {tls}, expires {str(s.get('tls_not_after') or '?')[:10]}",
        f"[b]API key[/]    {s.get('api_key_file')}",
    ]
    renewal = acme.get("last_renewal") or {}
    if renewal:
        lines.append(f"[b]Renewed[/]    {str(renewal.get('at'))[:16]} ({renewal.get('result')})")
    pending = s.get("tls_pending")
    if pending:
        error = f" Last error: {pending['last_error']}." if pending.get("last_error") else ""
        retry = (f" Next attempt {str(pending['next_attempt'])[:16]}."
                 if pending.get("next_attempt") else "")
        lines.append(f"[yellow]Let's Encrypt for {pending.get('domain')}: {pending.get('state')}"
                     f"; the current certificate keeps serving.{error}{retry}[/]")
    return "\n".join(lines + backend_lines(s))


def backend_lines(s: dict[str, Any]) -> list[str]:
    """On a load balancer: each backend's state, requests running and waiting at the LB."""
    lb = s.get("lb")
    if not isinstance(lb, dict):
        return [f"[b]Role[/]       {s['role']}"] if s.get("role") else []
    lines = [f"[b]Role[/]       load balancer: {lb.get('up', 0)} backend(s) up, "
             f"{lb.get('current', 0)} running, {lb.get('queued', 0)} queued"]
    colour = {"up": "green", "draining": "yellow"}
    for b in lb.get("backends") or []:
        c = colour.get(b["state"], "red")
        lines.append(f"  {b['name']:<8} {b['address']:<22} [{c}]{b['state']:<9}[/] "
                     f"{b['current']}/{b['slots']} running, {b['queued']} queued")
    if lb.get("error"):
        lines.append(f"[red]{lb['error']}[/]")
    return lines


def starting_answers(session: Session) -> tuple[Answers, list[FieldError]]:
    """The applied answers; a value the stored file got wrong starts from its default."""
    start = session.start()
    return start.answers, list(start.problems)


class StatusScreen(StepScreen):
    STEP = "status"
    NEXT_LABEL = "Configure"
    BACK = False

    def body(self) -> Iterable[Widget]:
        yield Static("What runs now", classes="hint")
        yield Static("Reading the current state...", id="status")
        yield field_error("status")

    def buttons(self) -> Iterable[Widget]:
        yield Button("Quit", id="quit")
        yield Button("Read again", id="reread")
        yield from super().buttons()

    def on_mount(self) -> None:
        self.query_one("#reread", Button).display = False
        self._read()

    @on(Button.Pressed, "#reread")
    def _read(self) -> None:
        self.query_one("#reread", Button).display = False
        self.query_one("#status", Static).update("Reading the current state...")
        self.work(self._load, self._show, self._failed)

    def _load(self) -> tuple[Answers, list[FieldError], dict[str, Any] | None, str]:
        answers, problems = starting_answers(self.host.session)
        try:
            return answers, problems, self.host.session.status(), ""
        except Exception as exc:  # shown with the answers still usable
            return answers, problems, None, describe(exc)

    def _show(self, read: tuple[Answers, list[FieldError], dict[str, Any] | None, str]) -> None:
        answers, problems, info, error = read
        self.app.post_message(StateRead(answers, problems))
        status = self.query_one("#status", Static)
        if info is None:
            self._failed(error)
        else:
            status.update(status_text(info))
        if problems:
            lines = "\n".join(f"  ✖ {p.field}: {message(p)}" for p in problems)
            label = self.query_one("#status-error", Static)
            label.update("The stored answers file has problems; these fields start from the "
                         f"defaults (apply to repair it):\n{lines}")
            label.add_class("shown")

    def _failed(self, error: str) -> None:
        self.query_one("#status", Static).update(
            f"[red]Could not read the current state:[/] {error}\nConfigure still works; "
            "'Read again' retries.")
        self.query_one("#reread", Button).display = True

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.app.post_message(QuitRequested())
