from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static, TabbedContent, TabPane

from .base import StepScreen


class DoneScreen(StepScreen):
    STEP = "done"
    NEXT_LABEL = "Finish"
    BACK = False

    def compose(self) -> ComposeResult:
        from appliance.session import client_snippets

        session = self.wizard.session
        info = session.status()
        endpoint = str(info.get("endpoint"))
        key_file = str(session.layout.map(session.layout.api_key_file))
        ca = str(session.layout.map(session.layout.selfsigned_cert)) if info.get("ca_file") \
            else None
        snippets = client_snippets(endpoint, str(info.get("model")), key_file, ca)
        yield from super().compose()
        self._endpoint = endpoint
        self._snippets = snippets
        self._ready = info.get("ready")

    def body(self) -> Iterable[Widget]:
        yield Static("", id="summary")
        yield TabbedContent(id="snippets")

    def on_mount(self) -> None:
        ready = "[green]ready[/]" if self._ready else "[red]not ready[/]"
        self.query_one("#summary", Static).update(
            f"[b]Endpoint[/] {self._endpoint}  {ready}\n[b]Key[/] sudo cat "
            f"{self.wizard.session.layout.map(self.wizard.session.layout.api_key_file)}")
        tabs = self.query_one("#snippets", TabbedContent)
        for n, (name, text) in enumerate(self._snippets.items()):
            tabs.add_pane(TabPane(name, Static(text, markup=False), id=f"tab{n}"))

    def leave(self) -> bool:
        self.wizard.session.mark_done()
        self.app.exit(0)
        return False
