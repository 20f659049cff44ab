"""The app as real server processes (uvicorn or daphne), as production runs it, for tests across processes."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from tests.fake_service import tone

ROOT = Path(__file__).resolve().parent.parent
APPEND = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(tone(200)).decode()})

SERVERS = {
    "uvicorn": ["-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"],
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "config.asgi:application"],
}

# Run with `manage.py shell -c`: a user and a signed-in session of theirs; prints the session key.
MAKE_SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
user = get_user_model().objects.create_user("{username}", password="s3cret-pass")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(session.session_key)
"""


def app_environment(service, database: Path, **settings: str) -> dict[str, str]:
    """A server process's environment: its own SQLite file, pointed at the fake service, and `settings`."""
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "AZURE_OPENAI_ENDPOINT": service.endpoint,
        "AZURE_OPENAI_API_KEY": service.api_key,
        "AZURE_OPENAI_API_VERSION": "",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "true",
        "PYTHONDEVMODE": "",
        **settings,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_session(env: dict, username: str = "carol") -> str:
    """A new user's signed-in session key, in the database of `env`."""
    return manage(env, "shell", "-c", MAKE_SESSION.format(username=username)).strip().splitlines()[-1]


def start_server(name: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, *(part.format(port=port) for part in SERVERS[name])]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        assert server.poll() is None, server.communicate()[0]
        time.sleep(0.1)
    server.kill()
    raise AssertionError(f"{name} did not listen within 20 s: {server.communicate()[0]}")


def kill_server(server: subprocess.Popen) -> None:
    """Kill the server if it still runs: a test's cleanup after whatever went wrong."""
    if server.poll() is None:
        server.kill()
        server.communicate()


def stop_server(server: subprocess.Popen) -> str:
    """Stop the server if it still runs; what it printed."""
    if server.poll() is None:
        server.terminate()
    try:
        return server.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        server.kill()
        return server.communicate()[0]


async def open_page(port: int, session_key: str, query: str = "") -> ClientConnection:
    """The chat page's socket, logged in, from the site's own origin."""
    return await connect(
        f"ws://127.0.0.1:{port}/ws/realtime/{query}",
        additional_headers={"Cookie": f"sessionid={session_key}"},
        origin=f"http://127.0.0.1:{port}",
        open_timeout=10,
    )


async def until(socket_: ClientConnection, event_type: str, timeout: float = 20) -> list[dict]:
    """Events up to and including the first of this type."""
    events = []
    async with asyncio.timeout(timeout):
        async for frame in socket_:
            events.append(json.loads(frame))
            if events[-1]["type"] == event_type:
                return events
    raise AssertionError(f"the socket closed before {event_type}: {[e['type'] for e in events]}")


async def one_turn(port: int, session_key: str) -> ClientConnection:
    """Open a conversation and finish one turn; the socket stays open."""
    socket_ = await open_page(port, session_key)
    await until(socket_, "session.updated")
    await socket_.send(APPEND)
    await socket_.send(json.dumps({"type": "input_audio_buffer.commit"}))
    await until(socket_, "response.done")
    return socket_


def wait_for(check, timeout: float = 10):
    """Poll a check until it returns a true value (bounded in time); its last value."""
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value
