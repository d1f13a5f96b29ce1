"""Step 8: how to use it. Each snippet is shown unwrapped (long lines scroll sideways), has a
Copy action (the terminal's clipboard, OSC 52) and is saved to a file printed at exit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual import on
from textual.binding import Binding
from textual.containers import HorizontalScroll
from textual.widget import Widget
from textual.widgets import Button, Static, TabbedContent, TabPane

from .base import StepScreen
from .messages import Finished


class DoneScreen(StepScreen):
    STEP = "done"
    NEXT_LABEL = "Finish"
    BACK = False
    BINDINGS: ClassVar = [Binding("c", "copy", "Copy snippet")]

    def body(self) -> Iterable[Widget]:
        yield Static("Reading the endpoint...", id="summary")
        yield TabbedContent(id="snippets")

    def buttons(self) -> Iterable[Widget]:
        yield Button("Copy (C)", id="copy", disabled=True)
        yield from super().buttons()

    def on_mount(self) -> None:
        self._snippets: dict[str, str] = {}
        self._summary = ""
        self.work(self.host.session.client_setup, self._show, self._failed)

    def _show(self, setup: Any) -> None:
        access, snippets, saved = setup.access, setup.snippets, setup.saved
        self._snippets, self._summary = snippets, setup.summary
        ready = "[green]ready[/]" if setup.ready else "[red]not ready[/] (see wizard status)"
        self.query_one("#summary", Static).update(
            f"[b]Endpoint[/] {access.endpoint}  {ready}\n[b]Key[/]      {access.key_file} "
            f"(root only)\n[b]Snippets[/] {saved} (0600)\n[dim]C copies the tab shown; the "
            "Laptop tab says how to copy the key and CA file there.[/]")
        tabs = self.query_one("#snippets", TabbedContent)
        for n, (name, text) in enumerate(snippets.items()):
            tabs.add_pane(TabPane(name, HorizontalScroll(Static(text, markup=False,
                                                                classes="snippet")),
                                  id=f"tab{n}"))
        self.query_one("#copy", Button).disabled = False

    def _failed(self, error: str) -> None:
        self.query_one("#summary", Static).update(
            f"[red]Could not read the endpoint:[/] {error}\n'wizard status' shows it too.")

    def _active(self) -> tuple[str, str] | None:
        active = self.query_one("#snippets", TabbedContent).active
        names = list(self._snippets)
        if not active.startswith("tab") or not names:
            return None
        name = names[int(active[3:])]
        return name, self._snippets[name]

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        shown = self._active()
        if shown is None:
            return
        name, text = shown
        self.app.copy_to_clipboard(text)
        self.notify(f"{name}: copied to the clipboard ({len(text.splitlines())} "
                    f"line{'s' if len(text.splitlines()) != 1 else ''}). If your terminal "
                    "blocks clipboard access, use the file named above.")

    def forward(self) -> None:
        self.app.post_message(Finished(self._summary))
