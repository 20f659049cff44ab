"""Channels' session and user for the realtime socket, without a wrapper on every frame sent."""

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware


class SocketSessionMiddleware(SessionMiddleware):
    """Channels' SessionMiddleware, handing the inner application the server's own send.

    Channels' wrapped send saves the session and sets its cookie on an HTTP response
    start only, and looks the session up for every message to decide so: a socket
    never sends one, and its audio frames (25 a second for each page) paid that lookup
    for nothing (bench/relay.py).
    """

    async def __call__(self, scope, receive, send) -> None:
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def SocketAuthMiddlewareStack(inner) -> CookieMiddleware:  # named like Channels' AuthMiddlewareStack
    """Channels' AuthMiddlewareStack for a WebSocket route: scope["session"] and scope["user"]."""
    return CookieMiddleware(SocketSessionMiddleware(AuthMiddleware(inner)))
