from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from .base import StepScreen


class TLSScreen(StepScreen):
    STEP = "tls"
    AUTO_FOCUS = "#mode"

    def body(self) -> Iterable[Widget]:
        tls = self.draft.tls
        yield Static("Clients such as VS Code extensions need a trusted certificate: give a "
                     "domain that points at this VM, with port 80 open, for Let's Encrypt.",
                     classes="hint")
        with RadioSet(id="mode"):
            yield RadioButton("Keep the self-signed certificate", id="self-signed",
                              value=tls.mode == "self-signed")
            yield RadioButton("Let's Encrypt for a domain", id="letsencrypt",
                              value=tls.mode == "letsencrypt")
        with Horizontal(classes="row"):
            yield Label("Domain")
            yield Input(tls.domain or "", id="domain", placeholder="llm.example.com")
        with Horizontal(classes="row"):
            yield Label("E-mail (optional)")
            yield Input(tls.email or "", id="email", placeholder="ops@example.com")
        with Horizontal(classes="row"):
            yield Checkbox("Skip the DNS check", tls.skip_dns_check, id="skip")
            yield Button("Check DNS", id="check")
        yield Static("", id="checks")

    def _read(self) -> None:
        mode = "letsencrypt" if self.query_one("#letsencrypt", RadioButton).value \
            else "self-signed"
        domain = self.query_one("#domain", Input).value.strip() or None
        email = self.query_one("#email", Input).value.strip() or None
        skip = self.query_one("#skip", Checkbox).value
        tls = replace(self.draft.tls, mode=mode, domain=domain, email=email,
                      skip_dns_check=skip)
        self.wizard.draft = self.draft.replace(tls=tls)

    @on(Button.Pressed, "#check")
    def _start_check(self) -> None:
        self._read()
        if not self.draft.tls.domain:
            self.query_one("#checks", Static).update("[red]Enter a domain first[/]")
            return
        self.query_one("#checks", Static).update("Checking...")
        answers = self.draft
        self.run_worker(lambda: self._check(answers), thread=True, exit_on_error=False)

    def _check(self, answers: object) -> None:
        results = self.wizard.session.dns_check(answers)  # type: ignore[arg-type]
        lines = [f"{'[green]ok[/]' if ok else '[red]no[/]'}  {name}: {detail}"
                 for name, ok, detail in results]
        self.app.call_from_thread(self.query_one("#checks", Static).update, "\n".join(lines))

    def leave(self) -> bool:
        self._read()
        if self.draft.tls.mode == "letsencrypt" and not self.draft.tls.domain:
            self.query_one("#checks", Static).update("[red]Let's Encrypt needs a domain[/]")
            return False
        return True
