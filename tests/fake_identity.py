"""App Service's managed-identity token endpoint for tests: a real HTTP server on 127.0.0.1.

azure-identity's ManagedIdentityCredential (in DefaultAzureCredential) asks it for a token with
a plain GET when IDENTITY_ENDPOINT and IDENTITY_HEADER are set. It checks the secret header,
the API version and the resource like App Service does, and issues a new token for each request.
"""

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/msi/token"
API_VERSION = "2019-08-01"
RESOURCE = "https://cognitiveservices.azure.com"  # the scope, less its "/.default"


class FakeManagedIdentity:
    """Start with `with FakeManagedIdentity() as identity:`; point IDENTITY_ENDPOINT at `identity.endpoint`."""

    def __init__(self, *, lifetime: int = 60) -> None:
        # Tokens that expire within five minutes are not served from the credential's cache:
        # a short lifetime makes every request for a token reach this server.
        self.lifetime = lifetime
        self.header = secrets.token_urlsafe(16)  # IDENTITY_HEADER: a secret too
        self.issued: list[str] = []  # every token handed out, in order
        self.requests: list[dict[str, Any]] = []  # every request's query and identity header
        self.fail_with: int | None = None  # answer every request with this HTTP status and no token
        self.hang = False  # hold every request until release() (or 10 s)
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{PATH}"

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> "FakeManagedIdentity":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def answer(self, path: str, header: str | None) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one request."""
        url = urlsplit(path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        self.requests.append({"query": query, "header": header})
        if self.hang:
            self._released.wait(10)
        if url.path != PATH:
            return 404, {"statusCode": 404, "message": "Not found"}
        if header != self.header:
            return 401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER is missing or wrong."}
        if query.get("api-version") != API_VERSION or query.get("resource") != RESOURCE:
            return 400, {"statusCode": 400, "message": f"Unexpected request: {query}"}
        if self.fail_with is not None:
            return self.fail_with, {"statusCode": self.fail_with, "message": "No managed identity is assigned."}
        token = f"entra-{secrets.token_urlsafe(24)}"
        self.issued.append(token)
        return 200, {
            "access_token": token,
            "expires_on": str(int(time.time()) + self.lifetime),
            "resource": RESOURCE,
            "token_type": "Bearer",
            "client_id": "00000000-0000-0000-0000-000000000000",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        identity = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, payload = identity.answer(self.path, self.headers.get("X-IDENTITY-HEADER"))
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the tests read `requests`; nothing for standard error

        return Handler
