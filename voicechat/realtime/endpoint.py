"""The upstream WebSocket URL for each endpoint form."""

from urllib.parse import quote, urlsplit

from voicechat.realtime.session_config import Shape

_SCHEMES = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}
# A pasted endpoint sometimes carries the API path; the URL is rebuilt from the host.
_API_SUFFIXES = ("/openai/v1", "/openai")


def shape_for(api_version: str) -> Shape:
    """GA unless a (preview) api-version is configured: GA refuses any api-version."""
    return Shape.PREVIEW if api_version else Shape.GA


def realtime_url(endpoint: str, deployment: str, api_version: str = "") -> str:
    """The `wss://` (or, for a local `http://` endpoint, `ws://`) realtime URL."""
    parts = urlsplit(endpoint.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"The endpoint must look like https://NAME.openai.azure.com, not {endpoint!r}.")
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    base = f"{scheme}://{parts.netloc}{path}"
    if shape_for(api_version) is Shape.PREVIEW:
        return f"{base}/openai/realtime?api-version={quote(api_version)}&deployment={quote(deployment)}"
    return f"{base}/openai/v1/realtime?model={quote(deployment)}"
