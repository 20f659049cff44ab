"""PostgreSQL's connection pool: database calls share a few open connections, fail fast while
the database is down, and use it again as soon as it is back (config/settings.py)."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError, connection

from tests.database_outage import database_outage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL's pool: run with DATABASE_URL=postgres://... (as .ci/run does)",
    ),
]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


async def test_database_calls_reuse_the_pools_connections():
    call = database_sync_to_async(backend_pid)  # each call hands its connection back, as the app's do
    await call()
    opened = connection.pool.get_stats().get("connections_num", 0)
    pids = {await call() for _ in range(20)}
    assert connection.pool.get_stats().get("connections_num", 0) == opened  # not one more connection
    assert len(pids) <= connection.pool.max_size


async def test_a_call_fails_within_the_pools_timeout_while_the_database_is_down():
    async with database_outage():
        # psycopg's own default would hold the one database thread for 30 s.
        async with asyncio.timeout(connection.pool.timeout + 3):
            with pytest.raises(OperationalError):
                await database_sync_to_async(backend_pid)()


async def test_the_first_call_after_a_long_outage_gets_a_connection():
    # Left to its backoff (1, 2, 4, 8 s ...), the pool would next try to connect about 15 s after
    # the outage began: the call just after this 9 s one would wait its second and fail.
    async with database_outage():
        with pytest.raises(OperationalError):
            await database_sync_to_async(backend_pid)()
        await asyncio.sleep(9)
    assert await database_sync_to_async(backend_pid)() > 0
