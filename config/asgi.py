"""ASGI entry point: HTTP through Django, the realtime socket through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from voicechat.routing import websocket_urlpatterns  # noqa: E402
from voicechat.socket_session import SocketAuthMiddlewareStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# What is loaded by now (Django, the app, the channel layer's client) lives as long as the
# process: frozen, the garbage collector no longer walks its 100,000 objects, a full
# collection that stopped every conversation for a tenth of a second (bench/relay.py).
get_channel_layer()
gc.collect()
gc.freeze()
