"""A OneGate stand-in on loopback: no OneGate server can run here (it needs oned and OneFlow).

Built only from documented and read behaviour (OpenNebula/one ``src/onegate/onegate-server.rb``,
the OneGate API docs, the vendored one-apps ``onegate`` client), the subset the appliance uses:

* every reply is ``Content-Type: application/json;charset=utf-8``; error bodies are plain text;
* ``X-ONEGATE-VMID`` + ``X-ONEGATE-TOKEN`` must name a known VM and its token, else 401
  ``Not authorized``;
* ``PUT /vm``: ``data``/``type`` from the query or a form body, else the raw body as data;
  a literal ``\\n`` splits lines; keys are upper-cased; ``type`` 1 merges, anything else erases
  one key (absent: 500); ``SERVICE_ID``/``ROLE_NAME``/``SCHED_REQUIREMENTS`` give 403; values
  with ``, [ ] \\ "`` (which break oned's quoting) give 500; values are stored as strings;
* ``GET /vm``, ``GET /vms/:id`` (same service only, else 400): ``NAME ID STATE LCM_STATE
  USER_TEMPLATE TEMPLATE.NIC[]``;
* ``GET /service``: roles with ``nodes[{deploy_id, running: null, vm_info}]``; without
  ``extended`` (query or form body, even on a GET) ``vm_info`` holds OneFlow's six keys only,
  with it the full VM (one NIC as an object, several as a list);
* anything else: 400 ``OneGate server doesn't support this feature``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RESTRICTED = ("SCHED_REQUIREMENTS", "SERVICE_ID", "ROLE_NAME")
BAD_VALUE = re.compile(r'[,\[\]\\"]')
KEY = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class VM:
    id: str
    name: str
    token: str
    ip: str = "127.0.0.1"
    state: str = "3"
    lcm_state: str = "3"
    user_template: dict[str, str] = field(default_factory=dict)

    def doc(self, full: bool) -> dict[str, Any]:
        nic = {"IP": self.ip, "MAC": "02:00:7f:00:00:01", "NAME": "NIC0", "NETWORK": "private"}
        template: dict[str, Any] = {"NIC": nic if full else [nic], "NIC_ALIAS": []}
        if full:
            template["CONTEXT"] = {"TOKEN": "YES"}
        return {"VM": {"NAME": self.name, "ID": self.id, "STATE": self.state,
                       "LCM_STATE": self.lcm_state, "USER_TEMPLATE": dict(self.user_template),
                       "TEMPLATE": template}}


@dataclass
class Service:
    id: str
    name: str
    roles: dict[str, list[str]]


class OneGateStandIn:
    def __init__(self) -> None:
        self.vms: dict[str, VM] = {}
        self.services: dict[str, Service] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def add_service(self, sid: str, name: str, roles: dict[str, list[VM]]) -> None:
        self.services[sid] = Service(sid, name, {r: [vm.id for vm in vms]
                                                 for r, vms in roles.items()})
        for role, vms in roles.items():
            for vm in vms:
                vm.user_template.update({"SERVICE_ID": sid, "ROLE_NAME": role})
                self.vms[vm.id] = vm

    # -- the HTTP side ---------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Serve on loopback (port 0: any free one); returns the endpoint URL."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with standin.lock:
                    standin.requests.append((self.command, self.path))
                    code, text = standin.handle(self.command, self.path, dict(self.headers),
                                                body)
                self._reply(code, text)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- the server's logic ------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str],
               body: str) -> tuple[int, str]:
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        form = ({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
                if ctype.startswith("application/x-www-form-urlencoded") else {})
        params = {**form, **query}
        route = (method, url.path)
        known = (route in (("GET", "/vm"), ("PUT", "/vm"), ("GET", "/service"))
                 or (method == "GET" and re.fullmatch(r"/vms/\d+", url.path)))
        if not known:
            return 400, "OneGate server doesn't support this feature"
        hdr = {k.lower(): v for k, v in headers.items()}
        vm = self.vms.get(hdr.get("x-onegate-vmid", ""))
        if vm is None or hdr.get("x-onegate-token") != vm.token:
            return 401, "Not authorized"
        if route == ("GET", "/vm"):
            return 200, json.dumps(vm.doc(full=False))
        if route == ("PUT", "/vm"):
            return self._update(vm, params, body)
        if route == ("GET", "/service"):
            return self._service(vm, "extended" in params)
        other = self.vms.get(url.path.rsplit("/", 1)[1])
        sid = vm.user_template.get("SERVICE_ID")
        if other is None or other.user_template.get("SERVICE_ID") != sid:
            return 400, f"Service {sid} does not contain VM {url.path.rsplit('/', 1)[1]}."
        return 200, json.dumps(other.doc(full=False))

    def _update(self, vm: VM, params: dict[str, str], body: str) -> tuple[int, str]:
        data = params.get("data", body)  # no data param: the raw body is the data
        data = data.replace("\\n", "\n")
        kind = params.get("type", "1")
        if kind != "1":
            key = data.strip()
            if key.upper() in RESTRICTED:
                return 403, f"Attribute ({key.upper()}) cannot be deleted"
            if key not in vm.user_template:
                return 500, "attribute not found"
            del vm.user_template[key]
            return 200, ""
        parsed: dict[str, str] = {}
        for line in data.splitlines():
            if not line.strip():
                continue
            key, _, value = line.partition("=")
            key, value = key.strip().upper(), value.strip()
            if key in RESTRICTED:
                return 403, f"Attribute ({key}) cannot be modified"
            if not KEY.match(key) or BAD_VALUE.search(value) or not value:
                return 500, "[VirtualMachineUpdateTemplate] Error parsing template"
            parsed[key] = value
        vm.user_template.update(parsed)
        return 200, ""

    def _service(self, vm: VM, extended: bool) -> tuple[int, str]:
        sid = vm.user_template.get("SERVICE_ID")
        if not sid:
            return 400, "Empty or invalid SERVICE_ID"
        svc = self.services.get(sid)
        if svc is None:
            return 404, f"Service {sid} not found"
        if not any(vm.id in ids for ids in svc.roles.values()):
            return 400, f"Service {sid} does not contain VM {vm.id}."
        roles = []
        for name, ids in svc.roles.items():
            nodes = []
            for i in ids:
                member = self.vms[i]
                info = member.doc(full=True) if extended else {"VM": {
                    "ID": member.id, "UID": "0", "GID": "0", "UNAME": "oneadmin",
                    "GNAME": "oneadmin", "NAME": member.name}}
                nodes.append({"deploy_id": int(i), "running": None, "vm_info": info})
            roles.append({"name": name, "cardinality": len(ids), "state": 2, "nodes": nodes})
        return 200, json.dumps({"SERVICE": {"name": svc.name, "id": svc.id, "state": 2,
                                            "roles": roles}})
