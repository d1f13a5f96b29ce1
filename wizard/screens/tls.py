"""Step 4: the certificate. Leaving with Let's Encrypt checks DNS first and shows the
addresses of this VM to point the record at; a failed check keeps the operator here once."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from .base import Choice, Choices, StepScreen, Tick, field_error, field_row
from .drafts import tls_values
from .fields import gate, merge, on_step, optional
from .messages import Navigate

if TYPE_CHECKING:
    from appliance.answers.schema import Answers


def public_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses a DNS record could point at (not loopback or link-local)."""
    out = []
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local):
            out.append(a)
    return out


def check_lines(results: list[tuple[str, bool, str]], addresses: list[str]) -> str:
    lines = [f"{'[green]ok[/]' if ok else '[red]no[/]'}  {name}: {detail}"
             for name, ok, detail in results]
    here = ", ".join(addresses) or "(no routable address found)"
    lines.append(f"Point the domain's A/AAAA record at this VM: [b]{here}[/]")
    return "\n".join(lines)


class TLSScreen(StepScreen):
    STEP = "tls"
    AUTO_FOCUS = "#mode"

    def body(self) -> Iterable[Widget]:
        tls = self.draft.get("tls") or {}
        yield Static("Clients such as VS Code extensions need a trusted certificate: give a "
                     "domain that points at this VM, with port 80 open, for Let's Encrypt.",
                     classes="hint")
        with Choices(id="mode", compact=True):
            yield Choice("Self-signed certificate (this VM's own names)", id="self-signed",
                         value=tls.get("mode") != "letsencrypt")
            yield Choice("Let's Encrypt for a domain", id="letsencrypt",
                         value=tls.get("mode") == "letsencrypt")
        yield field_error("mode")
        yield field_row("Domain", Input(tls.get("domain") or "", id="domain",
                                        placeholder="llm.example.com", compact=True))
        yield field_error("domain")
        yield field_row("E-mail", Input(tls.get("email") or "", id="email",
                                        placeholder="optional, e.g. ops@example.com",
                                        compact=True))
        yield field_error("email")
        with Horizontal(classes="row"):
            yield Tick("Skip the DNS check", bool(tls.get("skip_dns_check")), id="skip",
                       compact=True)
            yield Button("Check DNS", id="check", compact=True)
        yield field_error("skip")
        yield Static("", id="checks")

    def on_mount(self) -> None:
        self._checked: str | None = None  # the domain whose check the operator has seen

    def values(self) -> dict[str, Any]:
        return tls_values(self.query_one("#letsencrypt", Choice).value,
                          self.query_one("#domain", Input).value,
                          self.query_one("#email", Input).value,
                          self.query_one("#skip", Tick).value)

    def proceed(self, answers: Answers) -> bool:
        tls = answers.tls
        if tls.mode != "letsencrypt" or tls.skip_dns_check or self._checked == tls.domain:
            return True
        self._run_check(answers, leaving=True)
        return False

    @on(Button.Pressed, "#check")
    def _check_pressed(self) -> None:
        values = self.values()
        values["tls"]["mode"] = "letsencrypt"
        values["tls"]["domain"] = optional(self.query_one("#domain", Input).value)
        answers, errors = gate(merge(self.draft, values))
        if answers is None:
            self.show_errors(on_step(self.STEP, errors) or errors)
            return
        self._run_check(answers, leaving=False)

    def _run_check(self, answers: Answers, leaving: bool) -> None:
        domain = answers.tls.domain
        self.show_errors([])
        self.query_one("#checks", Static).update(f"Checking DNS for {domain}...")
        addresses = public_addresses(self.host.session.facts.addresses)

        def done(results: list[tuple[str, bool, str]]) -> None:
            self._checked = domain
            text = check_lines(results, addresses)
            ok = all(passed for _, passed, _ in results)
            if leaving and ok:
                self.app.post_message(Navigate(self.STEP, self.values(), "next"))
                return
            if not ok:
                text += ("\n[yellow]Fix the record (or tick 'Skip the DNS check'), then Next; "
                         "Next again continues anyway: the self-signed certificate keeps "
                         "serving until Let's Encrypt succeeds.[/]")
            self.query_one("#checks", Static).update(text)

        def failed(error: str) -> None:
            self._checked = domain
            self.query_one("#checks", Static).update(
                f"[red]DNS check failed:[/] {error}\nNext continues without it.")

        self.work(lambda: self.host.session.dns_check(answers), done, failed, group="dns")
