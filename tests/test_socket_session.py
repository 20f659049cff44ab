"""The realtime socket's middleware: Channels' session and user, and the server's own send."""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from voicechat.socket_session import SocketAuthMiddlewareStack

pytestmark = pytest.mark.django_db(transaction=True)


async def call_stack(cookie: str):
    seen = {}

    async def inner(scope, receive, send):
        seen["user"] = await sync_to_async(lambda: scope["user"].username)()
        seen["session_key"] = scope["session"].session_key
        seen["send"] = send

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        return None

    scope = {"type": "websocket", "path": "/ws/realtime/", "headers": [(b"cookie", cookie.encode())]}
    await SocketAuthMiddlewareStack(inner)(scope, receive, send)
    return seen, send


async def test_a_logged_in_socket_has_its_user_and_the_servers_send(user):
    client = Client()
    await sync_to_async(client.force_login)(user)
    session_key = client.cookies["sessionid"].value

    seen, send = await call_stack(f"sessionid={session_key}")

    assert seen["user"] == "alice"
    assert seen["session_key"] == session_key
    assert seen["send"] is send  # not a wrapper run for every frame


async def test_a_socket_without_a_session_is_anonymous(user):
    seen, _ = await call_stack("sessionid=nothing-valid")
    assert seen["user"] == ""
