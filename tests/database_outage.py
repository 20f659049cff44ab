"""Make the test database unavailable for a while, as a real outage would.

On PostgreSQL the database really refuses connections and the open ones are
dropped. SQLite has no server to stop, so every statement the app runs fails
as a locked or missing database would, through Django's execute wrappers.
"""

import contextlib
from collections.abc import AsyncIterator

import psycopg
from channels.db import database_sync_to_async
from django.db import OperationalError, connection


def _refuse(execute, sql, params, many, context):
    raise OperationalError("database is unavailable (a test outage)")


class _RefuseMatching:
    def __init__(self, fragment: str) -> None:
        self.fragment = fragment

    def __call__(self, execute, sql, params, many, context):
        if self.fragment in sql:
            raise OperationalError(f"statement on {self.fragment} refused (a test fault)")
        return execute(sql, params, many, context)


def _postgres(settings_dict: dict, allow: bool, drop_pid: int | None = None) -> None:
    admin = {
        "host": settings_dict["HOST"] or "127.0.0.1",
        "port": settings_dict["PORT"] or 5432,
        "user": settings_dict["USER"] or "postgres",
        "dbname": "postgres",
        "autocommit": True,
    }
    name = psycopg.sql.Identifier(settings_dict["NAME"])
    with psycopg.connect(**admin) as admin_connection:
        admin_connection.execute(
            psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(name, psycopg.sql.SQL(str(allow).lower()))
        )
        if drop_pid is not None:
            admin_connection.execute("SELECT pg_terminate_backend(%s)", [drop_pid])
    if not allow and connection.pool is not None:
        # The pool's idle connections are closed, and those in use are when they come back.
        connection.pool.drain()


def _backend_pid() -> int | None:
    return connection.connection.info.backend_pid if connection.connection is not None else None


@contextlib.asynccontextmanager
async def database_outage() -> AsyncIterator[None]:
    """The app's database calls fail inside the block and work again after it."""
    if connection.vendor == "postgresql":
        settings_dict = connection.settings_dict
        # The app's connections (in the thread its database calls run in, and in the pool) are
        # dropped and no new one is let in; the test's own, which sets up and tears down, is spared.
        app_pid = await database_sync_to_async(_backend_pid)()
        await database_sync_to_async(_postgres)(settings_dict, False, app_pid)
        try:
            yield
        finally:
            await database_sync_to_async(_postgres)(settings_dict, True)
        return

    async with _wrapped(_refuse):
        yield


@contextlib.asynccontextmanager
async def statements_refused(fragment: str) -> AsyncIterator[None]:
    """The app's statements that mention `fragment` (a table name, say) fail inside the block."""
    async with _wrapped(_RefuseMatching(fragment)):
        yield


@contextlib.asynccontextmanager
async def _wrapped(wrapper) -> AsyncIterator[None]:
    """Install an execute wrapper on the connection of the thread the app's database calls run in."""

    def install() -> None:
        connection.execute_wrappers.append(wrapper)

    def remove() -> None:
        connection.execute_wrappers.remove(wrapper)

    await database_sync_to_async(install)()
    try:
        yield
    finally:
        await database_sync_to_async(remove)()
