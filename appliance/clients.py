"""Copy-paste set-up for the usual OpenAI-compatible clients, and the first-login summary.

Pure text: one place says how curl, the OpenAI SDK, Continue, Cline and aider reach the
appliance. The curl line runs on this VM as it is (the key is written into it, so no
``sudo cat`` of a root-only file); the editor clients run on a laptop, so they use the CA file
copied there (``LAPTOP_CA``) and the snippets say how to copy it. Formats follow each client's
current documentation: Continue's ``config.yaml`` (``name``/``version``/``schema: v1`` and
``requestOptions.caBundlePath``), Cline's "OpenAI Compatible" provider, aider's
``OPENAI_API_BASE`` + ``openai/<model>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.plan.render.report import curl_example

LAPTOP_CA = "slm-appliance-ca.crt"  # saved in the laptop user's home folder
MAX_TOKENS = 64  # a base model would otherwise ramble until the context is full


@dataclass(frozen=True)
class Access:
    """What a client needs: the endpoint (".../v1"), the model name, the key, and where the
    CA file lives on this VM (None: a publicly trusted certificate)."""

    endpoint: str
    model: str
    key: str
    key_file: str
    ca_file: str | None
    host: str  # the VM's address or name, for scp/ssh


def chat_body(model: str) -> str:
    return json.dumps({"model": model, "max_tokens": MAX_TOKENS,
                       "messages": [{"role": "user", "content": "Say hello"}]},
                      separators=(",", ":"))


def curl_line(a: Access, ca_path: str | None) -> str:
    """One line (no continuation backslashes to lose when copied)."""
    ca = f"--cacert {ca_path} " if ca_path else ""
    return (f"curl {ca}{a.endpoint}/chat/completions -H 'Authorization: Bearer {a.key}' "
            f"-H 'Content-Type: application/json' -d '{chat_body(a.model)}'")


def copy_steps(a: Access) -> str:
    """How to get the key and the CA file onto a laptop."""
    lines = [f"# on your laptop: the API key (root-only on the VM at {a.key_file})",
             f"ssh root@{a.host} cat {a.key_file} > ~/slm-appliance.key && chmod 600 "
             "~/slm-appliance.key"]
    if a.ca_file:
        lines += ["# the self-signed CA, so clients verify the server",
                  f"scp root@{a.host}:{a.ca_file} ~/{LAPTOP_CA}"]
    return "\n".join(lines)


def client_snippets(a: Access) -> dict[str, str]:
    """Tab name -> text. Every snippet is complete: copied as it is, it works."""
    laptop_ca = f"$HOME/{LAPTOP_CA}" if a.ca_file else None
    py_verify = (f'http_client=httpx.Client(verify=os.path.expanduser("~/{LAPTOP_CA}")),\n'
                 if a.ca_file else "")
    continue_ca = (f"    requestOptions:\n      caBundlePath: /home/YOU/{LAPTOP_CA}  # where "
                   "you saved it\n" if a.ca_file else "")
    return {
        "curl": curl_line(a, a.ca_file),
        "Laptop": copy_steps(a) + "\n# then, on the laptop\n" + curl_line(a, laptop_ca),
        "OpenAI Python": (
            "import os\n\nimport httpx\nfrom openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{a.endpoint}", api_key="{a.key}",\n'
            f"                {py_verify})\n"
            f'reply = client.chat.completions.create(model="{a.model}", max_tokens='
            f'{MAX_TOKENS},\n    messages=[{{"role": "user", "content": "Say hello"}}])\n'
            "print(reply.choices[0].message.content)"),
        "Continue": (
            "# ~/.continue/config.yaml\nname: SLM appliance\nversion: 0.0.1\nschema: v1\n"
            f"models:\n  - name: SLM appliance\n    provider: openai\n    model: {a.model}\n"
            f"    apiBase: {a.endpoint}\n    apiKey: {a.key}\n    roles:\n      - chat\n"
            f"      - edit\n{continue_ca}"),
        "Cline": (
            "Cline settings (gear icon) > API Provider: OpenAI Compatible\n"
            f"Base URL: {a.endpoint}\nAPI Key: {a.key}\nModel ID: {a.model}\n"
            + (f"Self-signed: start VS Code with NODE_EXTRA_CA_CERTS=$HOME/{LAPTOP_CA} code\n"
               if a.ca_file else "")),
        "aider": (
            f"export OPENAI_API_BASE={a.endpoint}\nexport OPENAI_API_KEY={a.key}\n"
            + (f"export SSL_CERT_FILE=$HOME/{LAPTOP_CA}\n" if a.ca_file else "")
            + f"aider --model openai/{a.model}"),
    }


def exit_summary(a: Access, ready: bool, snippets_file: str | None) -> str:
    """Printed when the wizard ends, like a cloud image's first-login message."""
    lines = [
        "SLM appliance " + ("is ready." if ready else "is configured but NOT ready yet "
                                                      "(wizard status)."),
        f"  Endpoint : {a.endpoint} (OpenAI-compatible)",
        f"  Model    : {a.model}",
        f"  API key  : {a.key_file} (root only; rotate with the wizard)",
        f"  CA file  : {a.ca_file or '(publicly trusted certificate)'}",
    ]
    if snippets_file:
        lines.append(f"  Clients  : {snippets_file} (curl, Python, Continue, Cline, aider)")
    lines += ["Next steps:",
              f"  try it   : {curl_example(a.endpoint, a.key_file, a.ca_file, a.model)}",
              "  status   : wizard status      change settings: wizard",
              "  speed    : wizard bench       certificates: wizard renew"]
    return "\n".join(lines)
