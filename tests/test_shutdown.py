"""A real server process is stopped with SIGTERM, or killed, in the middle of a conversation."""

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.app_process import (
    APPEND,
    SERVERS,
    app_environment,
    kill_server,
    make_session,
    manage,
    one_turn,
    open_page,
    start_server,
    until,
    wait_for,
)
from tests.fake_service import ThreadedFakeService


@pytest.fixture
def service():
    with ThreadedFakeService() as service:
        yield service


@pytest.fixture
def app_env(service, tmp_path):
    """The environment of a server process: its own SQLite file, pointed at the fake service."""
    env = app_environment(service, tmp_path / "db.sqlite3")
    manage(env, "migrate", "--no-input", "-v", "0")
    return env, make_session(env), tmp_path / "db.sqlite3"


def rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute(query).fetchall()


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
        kill_server(server)
    # uvicorn closes the sockets itself with the standard 1012; under daphne the app closes
    # them, with its own 4012 (daphne sends no standard code but 1000). Both reconnect the page.
    assert first.close_code == second.close_code == {"uvicorn": 1012, "daphne": 4012}[server_name]
    # A clean exit, no crash while the loop winds down (uvicorn ends as by the signal it caught).
    assert server.returncode in (0, -signal.SIGTERM), output
    conversations = rows(database, "SELECT id, end_reason FROM voicechat_conversation ORDER BY id")
    assert [reason for _, reason in conversations] == ["server_shutdown", "server_shutdown"], output
    for conversation_id, _ in conversations:
        turns = rows(database, f"SELECT role, status FROM voicechat_turn WHERE conversation_id = {conversation_id}")
        assert sorted(turns) == [("assistant", "completed"), ("user", "completed")]


@pytest.mark.parametrize("server_name", SERVERS)
async def test_a_reply_cut_by_sigterm_is_saved_with_what_was_heard(app_env, service, server_name):
    env, session_key, database = app_env
    service.script.reply_ms = 3000
    service.script.chunk_delay = 0.1  # the reply streams for three seconds
    server, port = start_server(server_name, env)
    try:
        page = await open_page(port, session_key)
        await until(page, "session.updated")
        await page.send(APPEND)
        await page.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await until(page, "response.output_audio.delta")
        # The reply's turn is written as the conversation ends, while the server goes down.
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await page.wait_closed()
        output, _ = await asyncio.to_thread(server.communicate, timeout=20)
    finally:
        kill_server(server)
    assert rows(database, "SELECT end_reason FROM voicechat_conversation") == [("server_shutdown",)], output
    turns = rows(database, "SELECT role, status FROM voicechat_turn ORDER BY seq")
    assert turns == [("user", "completed"), ("assistant", "interrupted")], output


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
        kill_server(server)
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
        kill_server(server)
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
