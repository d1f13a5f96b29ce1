"""Stage 1, answers: the one schema every way in passes (TUI, answers file, ONEAPP_* context)."""
