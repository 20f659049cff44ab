"""A real server process is stopped with SIGTERM, or killed, in the middle of a conversation."""

import asyncio
import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.fake_service import ThreadedFakeService, tone

ROOT = Path(__file__).resolve().parent.parent
APPEND = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(tone(200)).decode()})

SERVERS = {
    "uvicorn": ["-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"],
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "config.asgi:application"],
}

MAKE_SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
user = get_user_model().objects.create_user("carol", password="s3cret-pass")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(session.session_key)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_env(tmp_path):
    """The environment of a server process: its own SQLite file, pointed at the fake service."""
    with ThreadedFakeService() as service:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "AZURE_OPENAI_ENDPOINT": service.endpoint,
            "AZURE_OPENAI_API_KEY": service.api_key,
            "AZURE_OPENAI_API_VERSION": "",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "true",
            "PYTHONDEVMODE": "",
        }
        manage(env, "migrate", "--no-input", "-v", "0")
        session_key = manage(env, "shell", "-c", MAKE_SESSION).strip().splitlines()[-1]
        yield env, session_key, tmp_path / "db.sqlite3"


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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


async def open_page(port: int, session_key: str, query: str = ""):
    """The chat page's socket, logged in, from the site's own origin."""
    return await connect(
        f"ws://127.0.0.1:{port}/ws/realtime/{query}",
        additional_headers={"Cookie": f"sessionid={session_key}"},
        origin=f"http://127.0.0.1:{port}",
        open_timeout=10,
    )


async def one_turn(port: int, session_key: str):
    """Open a conversation and finish one turn; the socket stays open."""
    socket_ = await open_page(port, session_key)
    async with asyncio.timeout(20):
        async for frame in socket_:
            if json.loads(frame)["type"] == "session.updated":
                break
        await socket_.send(APPEND)
        await socket_.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async for frame in socket_:
            if json.loads(frame)["type"] == "response.done":
                break
    return socket_


def rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute(query).fetchall()


def wait_for(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


@pytest.mark.parametrize("server_name", SERVERS)
async def test_sigterm_ends_every_open_conversation_as_a_shutdown(app_env, server_name):
    env, session_key, database = app_env
    server, port = start_server(server_name, env)
    try:
        first = await one_turn(port, session_key)
        second = await one_turn(port, session_key)
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await first.wait_closed()
            await second.wait_closed()
        output, _ = await asyncio.to_thread(server.communicate, timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    if server_name == "uvicorn":  # daphne drops its sockets without a close frame as it stops
        assert first.close_code == second.close_code == 1012
    conversations = rows(database, "SELECT id, end_reason FROM voicechat_conversation ORDER BY id")
    assert [reason for _, reason in conversations] == ["server_shutdown", "server_shutdown"], output
    for conversation_id, _ in conversations:
        turns = rows(database, f"SELECT role, status FROM voicechat_turn WHERE conversation_id = {conversation_id}")
        assert sorted(turns) == [("assistant", "completed"), ("user", "completed")]


async def test_after_a_kill_the_conversation_is_ended_as_interrupted(app_env):
    env, session_key, database = app_env
    server, port = start_server("uvicorn", env)
    try:
        socket_ = await one_turn(port, session_key)
        # The turn is written in the background: wait until it is, then kill without warning.
        saved = await asyncio.to_thread(
            wait_for, lambda: rows(database, "SELECT count(*) FROM voicechat_turn")[0][0] == 2
        )
        assert saved
        server.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server.communicate, timeout=20)
        await socket_.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert rows(database, "SELECT end_reason, ended_at FROM voicechat_conversation") == [("", None)]
    manage(env, "close_interrupted", "--stale-seconds", "0")
    assert rows(database, "SELECT end_reason FROM voicechat_conversation") == [("interrupted",)]
    assert rows(database, "SELECT count(*) FROM voicechat_turn") == [(2,)]


async def test_after_a_restart_the_page_goes_on_with_the_same_conversation(app_env):
    env, session_key, database = app_env
    server, port = start_server("uvicorn", env)
    try:
        page = await one_turn(port, session_key)
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await page.wait_closed()
        await asyncio.to_thread(server.communicate, timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    [(conversation_id,)] = rows(database, "SELECT id FROM voicechat_conversation")

    server, port = start_server("uvicorn", env)  # the restarted server
    try:
        # What the page does after a 1012 close: connect again, naming its conversation.
        page = await open_page(port, session_key, f"?conversation={conversation_id}")
        async with asyncio.timeout(20):
            async for frame in page:
                event = json.loads(frame)
                if event["type"] == "voicechat.conversation":
                    break
        assert (event["conversation_id"], event["resumed"]) == (conversation_id, True)
        await page.close()
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.communicate, timeout=20)
    assert rows(database, "SELECT resumes FROM voicechat_conversation") == [(1,)]
