"""/healthz: the database and the channel layer checked for real, each made to fail for real."""

import asyncio
import json

import pytest
from django.test import AsyncClient

from tests.app_process import free_port
from tests.database_outage import database_outage
from voicechat import health as health_module

pytestmark = pytest.mark.django_db(transaction=True)

HEALTHY = {"status": "ok", "database": "ok", "channel_layer": "ok"}


async def health(**extra):
    # A new client builds the middleware anew, so it reads the settings as the test left them.
    return await AsyncClient().get("/healthz", **extra)


async def test_a_healthy_worker_answers_200_and_is_never_cached():
    response = await health()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == HEALTHY
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-cache", "no-store", "must-revalidate", "private"} <= cache_control


async def test_the_database_down_is_a_503_that_names_it_and_nothing_more(caplog):
    async with database_outage():
        response = await health()
    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "failed", "database": "failed", "channel_layer": "ok"}
    # The error's text (the outage's own words on SQLite, PostgreSQL's refusal) stays in the log.
    assert b"outage" not in response.content and b"accepting" not in response.content
    assert "Health check: the database failed: OperationalError: " in caplog.text
    assert (await health()).status_code == 200  # and healthy again once it is back


async def test_a_channel_layer_that_cannot_be_reached_is_a_503(settings):
    # A Redis layer on a loopback port where nothing listens; the password must not come out.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"]},
        }
    }
    response = await health()
    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "failed", "database": "ok", "channel_layer": "failed"}
    assert b"hunter2" not in response.content and b"127.0.0.1" not in response.content


async def test_a_channel_layer_that_never_answers_fails_the_check_instead_of_holding_it(settings):
    """A Redis layer whose server accepts the connection and then says nothing."""
    accepted = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": None}]},
        }
    }
    try:
        async with asyncio.timeout(health_module.CHECK_TIMEOUT * 5):  # a hang fails the test, it does not stall it
            response = await health()
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted  # the layer did reach the server
    assert response.status_code == 503
    assert json.loads(response.content)["channel_layer"] == "failed"


async def test_plain_http_is_answered_even_when_https_is_required(settings):
    """A load balancer checks a worker over plain HTTP: no redirect for /healthz, and for nothing else."""
    settings.SECURE_SSL_REDIRECT = True
    response = await health()
    assert response.status_code == 200 and json.loads(response.content) == HEALTHY
    redirected = await AsyncClient().get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")


async def test_no_sign_in_needed_and_only_reads_allowed():
    assert (await AsyncClient().head("/healthz")).status_code == 200
    assert (await AsyncClient().post("/healthz")).status_code == 405


async def test_any_host_is_answered_as_a_load_balancer_names_the_worker(settings):
    """A probe sends the worker's address as its Host; every other path still refuses it."""
    settings.ALLOWED_HOSTS = ["voice.example.com"]
    response = await health(headers={"host": "10.0.0.7:8001"})
    assert response.status_code == 200 and json.loads(response.content) == HEALTHY
    refused = await AsyncClient().get("/accounts/login/", headers={"host": "10.0.0.7:8001"})
    assert refused.status_code == 400
