"""Named API keys: the store (``store``), its nginx rendering lives in ``plan.render.keys``,
usage from the access log (``usage``), and the operations the CLI and the TUI call
(``manage``, which goes through the one apply path)."""
