"""Pure renderers, one per kind of file: text in, text out, no I/O."""
