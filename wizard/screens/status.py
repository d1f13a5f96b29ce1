from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.widget import Widget
from textual.widgets import Button, Static

from .base import StepScreen


def status_text(s: dict[str, Any]) -> str:
    if not s.get("configured"):
        return "[b]Not configured yet.[/] Continue to choose a model and apply."
    ready = "[green]ready[/]" if s.get("ready") else "[red]not ready[/]"
    services = ", ".join(f"{u.removesuffix('.service')} {'running' if a else '[red]stopped[/]'}"
                         for u, a in (s.get("services") or {}).items())
    tls = s.get("tls_mode") or "?"
    if s.get("tls_domain"):
        tls += f" for {s['tls_domain']}"
    acme = s.get("acme") or {}
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
    if acme.get("last_error"):
        lines.append(f"[yellow]Let's Encrypt: {acme['last_error']}; next attempt "
                     f"{str(acme.get('next_attempt'))[:16]}[/]")
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


class StatusScreen(StepScreen):
    STEP = "status"
    NEXT_LABEL = "Configure"
    BACK = False

    def body(self) -> Iterable[Widget]:
        yield Static("What runs now", classes="hint")
        yield Static("Reading the current state...", id="status")

    def buttons(self) -> Iterable[Widget]:
        yield Button("Quit", id="quit")
        yield from super().buttons()

    def on_mount(self) -> None:
        self.run_worker(self._load, thread=True, exit_on_error=False)

    def _load(self) -> None:
        session = self.wizard.session
        info = session.status()
        draft = session.answers()
        self.app.call_from_thread(self._show, info, draft)

    def _show(self, info: dict[str, Any], draft: Any) -> None:
        if self.wizard.draft is None:
            self.wizard.draft = draft
        self.query_one("#status", Static).update(status_text(info))

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.app.exit(0)

    def leave(self) -> bool:
        if self.wizard.draft is None:
            self.notify("Still reading the current state", severity="warning")
            return False
        return True
