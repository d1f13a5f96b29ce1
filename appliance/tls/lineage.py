"""Certificate storage: ACME accounts and the live lineage per domain (versioned files,
switched by ``meta.json``, pruned only after the new one is verified as served)."""

from __future__ import annotations

import hashlib
import json

from appliance.host.files import atomic_write, read_bytes
from appliance.host.paths import ETC, Layout
from appliance.tls.acme_policy import Lineage


def account_dir(directory: str) -> str:
    return f"{ETC}/acme/accounts/{hashlib.sha256(directory.encode()).hexdigest()[:16]}"


def live_dir(domain: str) -> str:
    return f"{ETC}/acme/live/{domain}"


def load_lineage(layout: Layout, domain: str) -> Lineage | None:
    """The certificate ``meta.json`` names; files it does not name are never served."""
    base = layout.map(live_dir(domain))
    try:
        meta = json.loads((base / "meta.json").read_text())
        chain_file, key_file = str(meta["chain"]), str(meta["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    chain, key = read_bytes(base / chain_file), read_bytes(base / key_file)
    if not chain or not key:
        return None
    return Lineage(chain, key, str(meta.get("directory", "")), chain_file, key_file)


def store_lineage(layout: Layout, domain: str, lineage: Lineage, stamp: str) -> bytes | None:
    """Write the new key and chain under new names, then switch meta.json to them. The
    previous files stay until the new certificate is verified as served (``prune``); the
    previous meta is returned so a failed install can switch back (``restore_meta``)."""
    base = layout.map(live_dir(domain))
    previous = read_bytes(base / "meta.json")
    chain_file, key_file = f"fullchain-{stamp}.pem", f"privkey-{stamp}.pem"
    atomic_write(base / key_file, lineage.key_pem, 0o600)
    atomic_write(base / chain_file, lineage.fullchain_pem, 0o644)
    meta = {"directory": lineage.directory, "not_after": lineage.not_after.isoformat(),
            "chain": chain_file, "key": key_file}
    atomic_write(base / "meta.json", json.dumps(meta).encode(), 0o644)
    return previous


def restore_meta(layout: Layout, domain: str, previous: bytes | None) -> None:
    target = layout.map(live_dir(domain)) / "meta.json"
    if previous is None:
        target.unlink(missing_ok=True)
    else:
        atomic_write(target, previous, 0o644)


def prune(layout: Layout, domain: str) -> None:
    """Drop certificate files that meta.json no longer names (after a verified install)."""
    current = load_lineage(layout, domain)
    if current is None:
        return
    keep = {current.chain_file, current.key_file, "meta.json"}
    for f in layout.map(live_dir(domain)).iterdir():
        if f.name not in keep and f.suffix == ".pem":
            f.unlink()
