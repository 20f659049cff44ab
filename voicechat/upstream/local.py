"""The built-in local voice engine as an upstream session."""

import logging

from voicechat.conf import RealtimeConfig
from voicechat.realtime.failures import failure_local_engine
from voicechat.upstream import UpstreamError

logger = logging.getLogger(__name__)


async def open_local(config: RealtimeConfig):
    """Open a local engine session; raise UpstreamError if its models cannot be loaded."""
    # Imported here: the engine's audio libraries load only when it is used.
    from voicechat.local_engine.engine import LocalSession

    try:
        return await LocalSession.open(config.local)
    except (RuntimeError, OSError, ImportError) as error:
        logger.error("The local voice engine could not start: %s", error)
        raise UpstreamError(failure_local_engine(str(error))) from None
