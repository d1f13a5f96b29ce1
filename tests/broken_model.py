"""A model file that passes every check before the engine and then fails to load in it: for
the tests that an apply which cannot start the engine rolls back and keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import Stack


@contextmanager
def broken_model(stack: Stack) -> Iterator[str]:
    """For the block, a GGUF in the stack's models folder whose header reads fine but whose
    tensors are cut. Yields its path as the appliance sees it."""
    models = stack.root / "opt/slm-appliance/models"
    good = (models / "SmolLM2-135M-Instruct.Q4_1.gguf").read_bytes()
    (models / "broken.gguf").write_bytes(good[: 4 * 1024 * 1024])
    try:
        yield "/opt/slm-appliance/models/broken.gguf"
    finally:
        (models / "broken.gguf").unlink()
