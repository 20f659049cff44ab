"""Which realtime service answers, how the server signs in to it, and the WebSocket URL it opens."""

from enum import StrEnum
from urllib.parse import quote, urlsplit

from voicechat.realtime.session_config import Shape

_SCHEMES = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}
# A pasted endpoint sometimes carries the API path; the URL is rebuilt from the host.
_API_SUFFIXES = ("/openai/v1", "/openai")

# The resource Azure OpenAI accepts Microsoft Entra ID tokens for.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


class Provider(StrEnum):
    LOCAL = "local"  # the built-in local voice engine
    AZURE = "azure"  # Azure OpenAI
    OPENAI = "openai"  # OpenAI itself


class Auth(StrEnum):
    NONE = "none"  # the local engine needs none
    API_KEY = "api_key"
    ENTRA_ID = "entra_id"  # a Microsoft Entra ID token from the server's Azure identity


def provider_for(*, azure_endpoint: str, openai_api_key: str) -> Provider:
    """Azure if its endpoint is set, else OpenAI if its key is set, else the local engine."""
    if azure_endpoint.strip():
        return Provider.AZURE
    if openai_api_key.strip():
        return Provider.OPENAI
    return Provider.LOCAL


def auth_for(provider: Provider, *, azure_api_key: str) -> Auth:
    """Azure without a key signs in with Microsoft Entra ID; OpenAI always uses its key."""
    if provider is Provider.LOCAL:
        return Auth.NONE
    if provider is Provider.AZURE and not azure_api_key:
        return Auth.ENTRA_ID
    return Auth.API_KEY


def auth_headers(provider: Provider, auth: Auth, secret: str) -> dict[str, str]:
    """The handshake header that carries the key or the token."""
    if provider is Provider.AZURE and auth is Auth.API_KEY:
        return {"api-key": secret}
    return {"Authorization": f"Bearer {secret}"}


def shape_for(api_version: str) -> Shape:
    """GA unless a (preview) api-version is configured: GA refuses any api-version."""
    return Shape.PREVIEW if api_version else Shape.GA


def realtime_url(endpoint: str, deployment: str, api_version: str = "") -> str:
    """The Azure `wss://` (or, for a local `http://` endpoint, `ws://`) realtime URL."""
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


def openai_realtime_url(base_url: str, model: str) -> str:
    """OpenAI's realtime URL under its API base URL: `wss://api.openai.com/v1/realtime?model=MODEL`."""
    parts = urlsplit(base_url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc or parts.query:
        raise ValueError(f"OPENAI_BASE_URL must look like https://api.openai.com/v1, not {base_url!r}.")
    path = parts.path.rstrip("/").removesuffix("/realtime")
    return f"{scheme}://{parts.netloc}{path}/realtime?model={quote(model)}"
