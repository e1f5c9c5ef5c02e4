"""A stand-in for the Genesys simulator's integration-config subset, used only while
gcpipe/simulator/ has not landed (same constructor and methods as its documented API:
GenesysSimulator(client_id, client_secret), start(), base_url, add_integration(id, config),
request_count(path_prefix), stop()). Speaks the real shapes: Basic-auth client-credentials token,
GET/PUT /api/v2/integrations/{id}/config/current with 409 on a stale version."""
from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGenesys:
    def __init__(self, client_id: str = "cid", client_secret: str = "secret", **_: Any):
        self.client_id, self.client_secret = client_id, client_secret
        self.integrations: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def add_integration(self, integration_id: str, config: dict[str, Any]) -> None:
        self.integrations[integration_id] = json.loads(json.dumps(config))

    def request_count(self, path_prefix: str | None = None) -> int:
        return sum(1 for _, p in self.requests if path_prefix is None or p.startswith(path_prefix))

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("inin-correlation-id", str(uuid.uuid4()))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization", "")
                return auth.startswith("Bearer ") and auth[7:] in fake.tokens

            def _integration(self) -> str | None:
                parts = self.path.split("/")
                # /api/v2/integrations/{id}/config/current
                if len(parts) == 7 and parts[1:4] == ["api", "v2", "integrations"] and parts[5:] == ["config", "current"]:
                    return parts[4]
                return None

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path))
                self._body()
                expected = "Basic " + base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
                if self.path != "/oauth/token":
                    return self._send(404, {"message": "not found"})
                if self.headers.get("Authorization") != expected:
                    return self._send(400, {"error": "unauthorized_client"})
                token = uuid.uuid4().hex
                fake.tokens.add(token)
                self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": 86399})

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path))
                if not self._authorized():
                    return self._send(401, {"message": "unauthorized"})
                iid = self._integration()
                if iid not in fake.integrations:
                    return self._send(404, {"message": "not found"})
                self._send(200, fake.integrations[iid])

            def do_PUT(self) -> None:
                fake.requests.append(("PUT", self.path))
                body = json.loads(self._body() or b"{}")
                if not self._authorized():
                    return self._send(401, {"message": "unauthorized"})
                iid = self._integration()
                if iid not in fake.integrations:
                    return self._send(404, {"message": "not found"})
                current = fake.integrations[iid]
                if body.get("version") != current.get("version"):
                    return self._send(409, {"message": "version conflict", "code": "conflict", "status": 409})
                body["version"] = current.get("version", 0) + 1
                fake.integrations[iid] = body
                self._send(200, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
