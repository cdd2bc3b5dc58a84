"""A test double of Grafana's HTTP API: just the endpoints `tonle dashboards deploy` calls.

Folders by uid, data sources by uid, dashboards by uid and ``POST /api/dashboards/db``,
with Grafana's answers where deploy depends on them: 404 for what is missing, 412 when
a dashboard is saved over an existing one without ``overwrite``, the password kept
secret (only ``secureJsonFields`` says it is set), a version that grows with each save,
and 401 without the right bearer token. It records every request.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class State:
    """What the fake Grafana holds, and the requests it answered."""

    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writes(self) -> list[tuple[str, str]]:
        """The requests that changed something (anything but GET)."""
        return [r for r in self.requests if r[0] != "GET"]


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``state.requests``."""

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def _route(self, method: str) -> None:
            with state.lock:
                state.requests.append((method, self.path))
                if self.headers.get("Authorization") != f"Bearer {state.token}":
                    self._reply(401, {"message": "Unauthorized"})
                    return
                status, body = self._answer(method, self.path.split("?")[0])
                self._reply(status, body)

        def _answer(self, method: str, path: str) -> tuple[int, Any]:
            if m := re.fullmatch(r"/api/folders/([^/]+)", path):
                return self._folder(method, m[1])
            if path == "/api/folders" and method == "POST":
                body = self._body()
                if body["uid"] in state.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"],
                                              "version": 1}  # fmt: skip
                return 200, state.folders[body["uid"]]
            if m := re.fullmatch(r"/api/datasources/uid/([^/]+)", path):
                return self._datasource(method, m[1])
            if path == "/api/datasources" and method == "POST":
                body = self._body()
                if body["uid"] in state.datasources:
                    return 409, {"message": "data source with the same uid already exists"}
                state.datasources[body["uid"]] = body
                return 200, {"datasource": self._public(body), "message": "Datasource added"}
            if m := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path):
                found = state.dashboards.get(m[1])
                if found is None or method != "GET":
                    return 404, {"message": "Dashboard not found"}
                return 200, found
            if path == "/api/dashboards/db" and method == "POST":
                return self._save_dashboard(self._body())
            return 404, {"message": "Not found"}

        def _folder(self, method: str, uid: str) -> tuple[int, Any]:
            found = state.folders.get(uid)
            if found is None:
                return 404, {"message": "folder not found"}
            if method == "PUT":
                found.update(title=self._body()["title"], version=found["version"] + 1)
            return 200, found

        def _public(self, datasource: dict[str, Any]) -> dict[str, Any]:
            shown = {k: v for k, v in datasource.items() if k != "secureJsonData"}
            secure = datasource.get("secureJsonData") or {}
            return shown | {"id": 1, "secureJsonFields": {k: True for k in secure}}

        def _datasource(self, method: str, uid: str) -> tuple[int, Any]:
            found = state.datasources.get(uid)
            if found is None:
                return 404, {"message": "Data source not found"}
            if method == "PUT":
                body = self._body()
                # Grafana keeps the stored secret when an update sends none.
                body["secureJsonData"] = body.get("secureJsonData") or found.get("secureJsonData")
                state.datasources[uid] = body
                return 200, {"datasource": self._public(body), "message": "Datasource updated"}
            return 200, self._public(found)

        def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
            dashboard = body["dashboard"]
            uid = dashboard["uid"]
            if body.get("folderUid") not in state.folders:
                return 400, {"message": "folder not found"}
            old = state.dashboards.get(uid)
            if old is not None and not body.get("overwrite"):
                return 412, {"status": "name-exists", "message": "A dashboard with the same uid "
                             "already exists"}  # fmt: skip
            version = 1 if old is None else old["dashboard"]["version"] + 1
            stored = dashboard | {"id": 7, "version": version}
            state.dashboards[uid] = {
                "dashboard": stored,
                "meta": {"folderUid": body["folderUid"], "version": version},
            }
            return 200, {"id": 7, "uid": uid, "status": "success", "version": version}

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler


@contextmanager
def fake_grafana(token: str) -> Iterator[tuple[str, State]]:
    """A running fake Grafana: its URL and state; stopped on exit."""
    state = State(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, name="fake-grafana", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
