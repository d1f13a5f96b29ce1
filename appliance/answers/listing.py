"""The OpenNebula marketplace listing and the one-apps ``ONE_SERVICE_PARAMS``, generated from
the one ONEAPP_* list (``context.PARAMS``), the model catalog and what the build baked.

The listing's user inputs, its context section, ``inputs_order`` and the appliance script's
``ONE_SERVICE_PARAMS`` all come from ``PARAMS``, so the instantiate dialog can only offer what
``wizard context`` understands; list options are the catalog models and engines the image
contains, so it never offers something that cannot serve. The image block (size, checksums,
creation time) comes from the build manifest written by the post-processing.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from appliance.answers.catalog import load_catalog
from appliance.answers.context import PARAMS, RULE
from appliance.answers.schema import ENGINES, TLS_MODES
from appliance.errors import SetupError
from appliance.host.paths import Layout
from appliance.host.site import Site


def _error(message: str, fix: str) -> SetupError:
    return SetupError(f"{message} (fix: {fix})")

LISTING_ID = "c8f2a3e3-1a92-458a-b22c-8e9f03db6704"  # stable across versions: one appliance
NAME = "Service SLM - CPU LLM with OpenAI-compatible API"
APP_VERSION = "0.1.0"
RELEASE = 0
PUBLISHER = "slm-appliance"
SHORT_DESCRIPTION = "CPU-only LLM behind HTTPS + API key, with a first-boot wizard"
# One-apps metadata (create_one_service_metadata) carries the same text.
DESCRIPTION = """\
A small language model served on CPU through an OpenAI-compatible API
by llama.cpp llama-server (or LocalAI), behind nginx with TLS and an API key. Log in as root:
the setup wizard picks a model, tunes threads with a live benchmark and gets a Lets Encrypt
certificate for a domain. The API key is in /etc/slm-appliance/api_key; connection details
in /etc/one-appliance/config."""
LISTING_DESCRIPTION = f"""{DESCRIPTION}

{RULE}

The VM template asks for the host-passthrough CPU model: llama.cpp picks the fastest code
for the CPU it sees (AVX2/AVX-512), and an emulated CPU can be several times slower."""
TAGS = ("service", "llm", "openai", "llama.cpp", "debian")
LOGO = "slm-appliance.png"
ARCH = "x86_64"
TEMPLATE = {"cpu": "4", "vcpu": "4", "cpu_model": {"model": "host-passthrough"},
            "memory": "8192",  # Phi-3 mini at 4096 tokens needs ~4.4 GB + page cache
            "graphics": {"listen": "0.0.0.0", "type": "vnc"}}


@dataclass(frozen=True)
class Baked:
    """What an image contains: catalog model ids and engine names."""

    models: tuple[str, ...]
    engines: tuple[str, ...] = ("llama-server",)


def options(env: str, baked: Baked) -> tuple[str, ...]:
    """List options for a user input: the schema's list, filtered by what the build baked."""
    if env == "ONEAPP_SLM_MODEL_ID":
        return tuple(m for m in load_catalog() if m in baked.models)
    if env == "ONEAPP_SLM_ENGINE_NAME":
        return tuple(e for e in ENGINES if e in baked.engines)
    if env == "ONEAPP_SLM_TLS_MODE":
        return TLS_MODES
    return ()


def user_inputs(baked: Baked) -> dict[str, str]:
    """env -> Sunstone spec ``O|type|label|options|default``; defaults stay empty: empty = keep."""
    out = {}
    for env, p in PARAMS.items():
        if not p.offer:
            continue
        out[env] = f"{p.offer}|{p.description}|{','.join(options(env, baked))}|"
    return out


def service_params_bash() -> str:
    """The appliance script's ONE_SERVICE_PARAMS block (4th field: the user input's kind)."""
    width = max(len(e) for e in PARAMS) + 3
    lines = ["ONE_SERVICE_PARAMS=("]
    for env, p in PARAMS.items():
        lines.append(f"    {f'{chr(39)}{env}{chr(39)}':{width}} 'configure' "
                     f"{f'{chr(39)}{p.description}{chr(39)}':56} '{p.offer}'")
    lines.append(")")
    return "\n".join(lines)


@dataclass(frozen=True)
class Image:
    """The image block, from the post-processing manifest."""

    url: str
    size: int  # virtual size in bytes, as the marketplace expects
    md5: str
    sha256: str
    creation_time: int


def image_from_manifest(manifest: Path, url: str) -> Image:
    data = yaml.safe_load(manifest.read_text()) or {}
    missing = [k for k in ("size", "sha256", "creation_time") if not data.get(k)]
    if missing:
        raise _error(f"{manifest}: no {', '.join(missing)}",
                         "run the post-processing (packer/scripts/postprocess.sh) again")
    md5 = str(data.get("md5") or "")
    if not md5:  # older manifests carry only sha256: hash the image beside them
        md5 = _md5(manifest.parent / str(data.get("image", "slm-appliance.qcow2")))
    return Image(url=url, size=int(data["size"]), md5=md5, sha256=str(data["sha256"]),
                 creation_time=int(data["creation_time"]))


def _md5(path: Path) -> str:
    if not path.is_file():
        raise _error(f"the manifest has no md5 and {path} is missing",
                         "add md5 to the manifest or keep the image beside it")
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def version(creation_time: int) -> str:
    """``X.Y.Z-R-YYYYMMDD`` like the real listings."""
    return f"{APP_VERSION}-{RELEASE}-{time.strftime('%Y%m%d', time.gmtime(creation_time))}"


def listing(image: Image, baked: Baked) -> dict[str, Any]:
    inputs = user_inputs(baked)
    context: dict[str, str] = {"network": "YES"}
    context.update({env.lower(): f"${env}" for env in inputs})
    context.update({"ssh_public_key": "$USER[SSH_PUBLIC_KEY]", "report_ready": "YES",
                    "token": "YES"})
    return {
        "id": LISTING_ID, "name": NAME, "version": version(image.creation_time),
        "publisher": PUBLISHER, "description": LISTING_DESCRIPTION,
        "short_description": SHORT_DESCRIPTION, "tags": list(TAGS), "format": "qcow2",
        "creation_time": image.creation_time, "os-id": "Debian", "os-release": "12",
        "os-arch": ARCH, "hypervisor": "KVM", "opennebula_version": "6.10, 7.0, 7.2",
        "opennebula_template": {
            "context": context, **TEMPLATE, "os": {"arch": ARCH},
            "inputs_order": ",".join(inputs),
            "logo": f"images/logos/{LOGO}",
            "user_inputs": {env.lower(): spec for env, spec in inputs.items()},
        },
        "logo": LOGO,
        "images": [{"name": "slm-appliance", "url": image.url, "type": "OS", "dev_prefix": "vd",
                    "driver": "qcow2", "size": image.size,
                    "checksum": {"md5": image.md5, "sha256": image.sha256}}],
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as ``|-`` blocks; nothing folded (one-line ``inputs_order``)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(data: Mapping[str, Any]) -> str:
    return "---\n" + yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, width=10_000,
                               allow_unicode=True)


def _names(values: Iterable[str], kind: str, known: Iterable[str]) -> tuple[str, ...]:
    names, known = tuple(values), tuple(known)
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise _error(f"unknown or no {kind}: {', '.join(unknown) or '-'}",
                     f"use one of: {', '.join(known)}")
    return names


def baked_from(manifest: Mapping[str, Any], models: list[str], engines: list[str]) -> Baked:
    """What the build baked: the arguments, else the manifest's models/engines, else the
    marketplace default (Phi-3 on llama-server)."""
    return Baked(_names(models or manifest.get("models") or ["phi-3-mini-4k-instruct-q4"],
                        "catalog model", load_catalog()),
                 _names(engines or manifest.get("engines") or ["llama-server"], "engine",
                        ENGINES))


def baked_in(models_dir: Path, engine_bins: Mapping[str, Path]) -> Baked:
    """What an image (or a build's dist folder) contains: catalog models by file name, and the
    engines whose binary is there."""
    return Baked(tuple(m.id for m in load_catalog().values() if (models_dir / m.file).is_file()),
                 tuple(e for e in ENGINES if e in engine_bins and engine_bins[e].exists()))


def baked_on(layout: Layout, site: Site) -> Baked:
    """What this installation can serve without downloading anything."""
    return baked_in(layout.map(layout.models_dir),
                    {"llama-server": Path(site.llama_server_bin),
                     "localai": Path(site.localai_bin)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m appliance.answers.listing", description=__doc__)
    p.add_argument("--manifest", type=Path, help="the post-processing's slm-appliance.yaml")
    p.add_argument("--url", help="where the marketplace downloads the published image")
    p.add_argument("--dist", type=Path, help="the build's inputs folder (models/, local-ai): "
                   "offer what it holds")
    p.add_argument("--model", action="append", default=[], help="a baked catalog model id")
    p.add_argument("--engine", action="append", default=[], help="a baked engine")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    p.add_argument("--bash-params", action="store_true",
                   help="print the appliance script's ONE_SERVICE_PARAMS block instead")
    args = p.parse_args(argv)
    if args.bash_params:
        print(service_params_bash())
        return 0
    if not args.manifest or not args.url:
        p.error("--manifest and --url are needed to write a listing")
    try:
        manifest = yaml.safe_load(args.manifest.read_text()) or {}
        if args.dist:
            found = baked_in(args.dist / "models", {"llama-server": args.dist,
                                                    "localai": args.dist / "local-ai"})
            manifest = {**manifest, "models": list(found.models),
                        "engines": list(found.engines)}
        text = render(listing(image_from_manifest(args.manifest, args.url),
                              baked_from(manifest, args.model, args.engine)))
    except (SetupError, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
