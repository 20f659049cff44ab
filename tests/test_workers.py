"""Two server processes behind one database and one Redis channel layer, as production runs them.

The per-user limit on open conversations holds across them, and staff served by
one process see and end a conversation the other holds. The database is
PostgreSQL when the suite runs on it (a database of these tests' own), SQLite
otherwise; the channel layer is always Redis, the only one shared by processes.
"""

import asyncio
import json
import os
import re
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
from websockets.exceptions import ConnectionClosed

from tests.app_process import (
    app_environment,
    make_session,
    manage,
    open_page,
    start_server,
    stop_server,
    until,
    wait_for,
)
from tests.fake_service import ThreadedFakeService

DATABASE = "voicechat_workers_test"
# A Redis database of these tests' own, beside the one the rest of the suite may use.
REDIS_DB = 3

READ_CONVERSATION = """
import json
from voicechat.models import Conversation
c = Conversation.objects.get(pk={pk})
print(json.dumps({{"end_reason": c.end_reason, "end_detail": c.end_detail, "turns": c.turns.count()}}))
"""


@pytest.fixture
def database(tmp_path):
    """The workers' database URL: a PostgreSQL database of these tests' own, or a SQLite file."""
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    parts = urlsplit(configured)
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    yield urlunsplit(parts._replace(path=f"/{DATABASE}"))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    url = urlunsplit(parts._replace(path=f"/{REDIS_DB}"))
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def workers_env(database, tmp_path):
    with ThreadedFakeService() as service:
        env = app_environment(
            service,
            tmp_path / "db.sqlite3",
            DATABASE_URL=database,
            REDIS_URL=redis_url(),
            LOG_FORMAT="json",
            REALTIME_MAX_SESSIONS_PER_USER="1",
        )
        manage(env, "migrate", "--no-input", "-v", "0")
        yield env


@pytest.fixture
def two_workers(workers_env):
    first, first_port = start_server("uvicorn", workers_env)
    try:
        second, second_port = start_server("uvicorn", workers_env)
    except BaseException:
        stop_server(first)
        raise
    workers = {"first": (first, first_port), "second": (second, second_port)}
    yield workers
    for name, (server, _) in workers.items():
        print(f"--- {name} worker:", stop_server(server))  # shown when a test fails


def conversation_id_of(events: list[dict]) -> int:
    return next(e["conversation_id"] for e in events if e["type"] == "voicechat.conversation")


def read_conversation(env: dict, pk: int) -> dict:
    return json.loads(manage(env, "shell", "-c", READ_CONVERSATION.format(pk=pk)).strip().splitlines()[-1])


def staff_client(env: dict, port: int) -> httpx.Client:
    """An admin signed in through the login form of the process on `port`."""
    manage(
        env,
        "shell",
        "-c",
        'from django.contrib.auth.models import User; User.objects.create_superuser("root", password="s3cret-pass")',
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    login = client.get("/accounts/login/")
    answer = client.post(
        "/accounts/login/",
        data={"username": "root", "password": "s3cret-pass", "csrfmiddlewaretoken": csrf_token(login.text)},
    )
    assert answer.status_code == 302, answer.text
    return client


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


async def test_the_limit_on_open_conversations_holds_across_processes(workers_env, two_workers):
    session_key = make_session(workers_env)
    (_, first_port), (_, second_port) = two_workers["first"], two_workers["second"]

    held = await open_page(first_port, session_key)
    first_id = conversation_id_of(await until(held, "session.updated"))
    refused = await open_page(second_port, session_key)
    with pytest.raises(ConnectionClosed):
        await until(refused, "session.updated")
    assert refused.close_code == 4409
    await held.close()

    # Once the first conversation ended, the other process lets a new one start.
    assert wait_for(lambda: read_conversation(workers_env, first_id)["end_reason"]) == "client_closed"
    again = await open_page(second_port, session_key)
    assert conversation_id_of(await until(again, "session.updated")) != first_id
    await again.close()


async def test_staff_served_by_one_process_end_a_conversation_another_holds(workers_env, two_workers):
    session_key = make_session(workers_env)
    (_, admin_port), (holder, holder_port) = two_workers["first"], two_workers["second"]
    page = await open_page(holder_port, session_key)
    conversation_id = conversation_id_of(await until(page, "session.updated"))

    staff = staff_client(workers_env, admin_port)
    try:
        listing = staff.get("/admin/voicechat/livesession/")
        assert listing.status_code == 200
        assert f"/admin/voicechat/conversation/{conversation_id}/change/" in listing.text
        assert f":{holder.pid}<" in listing.text  # the process that holds it
        answer = staff.post(
            "/admin/voicechat/livesession/",
            data={
                "action": "end_sessions",
                "_selected_action": [str(conversation_id)],
                "csrfmiddlewaretoken": csrf_token(listing.text),
            },
            follow_redirects=True,
        )
        assert "Asked 1 session to end" in answer.text
    finally:
        staff.close()

    error = (await until(page, "error"))[-1]["error"]
    assert error["code"] == "staff_ended"
    await asyncio.wait_for(page.wait_closed(), 10)
    assert page.close_code == 4410
    output = stop_server(holder)
    record = read_conversation(workers_env, conversation_id)
    assert (record["end_reason"], record["end_detail"]) == ("staff_ended", "Ended by staff (root) in the admin.")

    # The holder's JSON log lines: one at the start, one at the end, with the figures.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    sessions = [line for line in lines if line.get("logger") == "voicechat.sessions"]
    assert [line["event"] for line in sessions] == ["session_started", "session_ended"]
    assert {k: sessions[1][k] for k in ("conversation_id", "turns", "tokens", "end_reason")} == {
        "conversation_id": conversation_id,
        "turns": 0,
        "tokens": 0,
        "end_reason": "staff_ended",
    }
    assert sessions[1]["level"] == "INFO" and sessions[1]["duration_s"] > 0
