"""The port allocator: blocks are exclusive while held, free when handed out, reusable after."""

from __future__ import annotations

import socket

import pytest

from tests.ports import SANDBOX, reserve, wait_for


def test_held_blocks_are_never_handed_out_twice() -> None:
    blocks = [reserve(SANDBOX) for _ in range(4)]
    try:
        assert len({b.base for b in blocks}) == 4
        for b in blocks:
            with socket.socket() as s:  # handed out free: a server can bind it now
                s.bind(("127.0.0.1", b.port(443)))
    finally:
        for b in blocks:
            b.release()


def test_a_block_whose_port_is_taken_is_skipped() -> None:
    first = reserve((443,))
    taken = socket.socket()
    taken.bind(("127.0.0.1", first.port(443)))
    first.release()  # the block is free to reserve, but one of its ports is in use
    try:
        others = [reserve((443,)) for _ in range(3)]
        assert first.base not in {b.base for b in others}
        for b in others:
            b.release()
    finally:
        taken.close()


def test_waiting_names_a_server_that_died() -> None:
    with pytest.raises(RuntimeError, match="pebble died before it answered: exit 1"):
        wait_for(lambda: False, "pebble", timeout=5, alive=lambda: "exit 1")
