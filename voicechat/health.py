"""/healthz: whether this worker reaches its database and its channel layer, for a proxy, load balancer or monitor."""

import asyncio
import logging
import secrets

from asgiref.sync import markcoroutinefunction
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

# A check that has not answered by then has failed: a load balancer does not wait long either.
CHECK_TIMEOUT = 2.0
PATH = "/healthz"
OK = "ok"
FAILED = "failed"


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def database_check() -> None:
    """A trivial query; raises if the database does not answer it in time."""
    async with asyncio.timeout(CHECK_TIMEOUT):
        await database_sync_to_async(_select_one)()


async def channel_layer_check() -> None:
    """A message sent to a new channel of this process and received back; raises if it does not come in time."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    token = secrets.token_hex(8)
    async with asyncio.timeout(CHECK_TIMEOUT):
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.check", "token": token})
        received = await layer.receive(channel)
    if received.get("token") != token:
        raise RuntimeError("the channel layer gave back another message")


async def _run(name: str, check) -> str:
    try:
        await check()
    except Exception as error:
        # Why, for the operator's log only: the response says no more than "failed".
        logger.warning("Health check: the %s failed: %s: %s", name.replace("_", " "), type(error).__name__, error)
        return FAILED
    return OK


@never_cache
@require_safe
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 and every check "ok", or 503 naming what failed; the body never holds an error's text."""
    database, channel_layer = await asyncio.gather(
        _run("database", database_check), _run("channel_layer", channel_layer_check)
    )
    healthy = database == channel_layer == OK
    return JsonResponse(
        {"status": OK if healthy else FAILED, "database": database, "channel_layer": channel_layer},
        status=200 if healthy else 503,
    )


class HealthCheckMiddleware:
    """Answers /healthz first, before Django checks the Host header or redirects to HTTPS.

    A load balancer or an orchestrator's probe names the worker by its address (the Host
    is `10.0.0.7:8001`), which ALLOWED_HOSTS has no reason to list; the answer says no
    more than which check failed, so it is safe to give whatever the Host.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH:
            return await healthz(request)
        return await self.get_response(request)
