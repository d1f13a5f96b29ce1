"""The CLI's commands, one module per group. Each module's ``add(sub)`` registers its
subcommands with ``set_defaults(handler=...)``; a new group is one module and one line here."""

from __future__ import annotations

from types import ModuleType

from . import certs, cluster, configure, keys, sandbox, services, speed

GROUPS: list[ModuleType] = [services, configure, speed, certs, sandbox, keys, cluster]
