"""Why a conversation cannot start or go on, what the user is told, and how the socket closes."""

import json
from dataclasses import dataclass

from voicechat.realtime.endpoint import Auth, Provider

# Close codes of the browser socket, besides the upstream ones below (the README lists them all).
# All private-use codes: daphne (autobahn) refuses to send any standard code but 1000, so a
# 1008 or a 1012 of the app's own would never reach the page there.
CLOSE_POLICY = 4008  # the rules were broken, as the standard 1008 says
CLOSE_SERVICE_RESTART = 4012  # the server is stopping, as the standard 1012 says: the page reconnects
# What uvicorn itself closes every socket with when it stops; a browser cannot send it.
SERVER_RESTART = 1012
CLOSE_SESSION_LIMIT = 4001
CLOSE_BUDGET = 4402
CLOSE_IDLE = 4408
CLOSE_TOO_MANY_SESSIONS = 4409
CLOSE_STAFF_ENDED = 4410
CLOSE_DATABASE = 4500

# HTTP statuses worth another handshake: the service is busy or briefly unwell.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Failure:
    reason: str  # an EndReason value
    message: str  # shown to the user: says what to fix, never holds a secret
    close_code: int  # sent to the browser after the error event
    retryable: bool = False  # a new attempt to connect may succeed
    retry_after: float | None = None  # seconds the service asked us to wait


def failure_for_status(
    status: int,
    *,
    deployment: str,
    retry_after: float | None = None,
    provider: Provider = Provider.AZURE,
    auth: Auth = Auth.API_KEY,
) -> Failure:
    """The failure for an HTTP status answered to the upstream handshake."""
    retry = {"retryable": status in TRANSIENT_STATUSES, "retry_after": retry_after}
    if status in (401, 403):
        return failure_auth(f"HTTP {status}", provider=provider, auth=auth)
    if status == 404:
        return failure_not_found("HTTP 404", deployment=deployment, provider=provider)
    if status == 429:
        return Failure(
            "rate_limited",
            "The voice service is throttling requests (HTTP 429): too many sessions or the quota is used up. "
            "Wait a minute and connect again.",
            4429,
            **retry,
        )
    return Failure(
        "upstream_error",
        f"The voice service refused the connection (HTTP {status}). Try again in a moment.",
        4502,
        **retry,
    )


def failure_for_refusal(
    code: str | None, close_code: int | None, *, deployment: str, provider: Provider, auth: Auth
) -> Failure:
    """The failure for a service that accepted the socket, then refused the session (OpenAI does so).

    OpenAI sends an `error` event, then closes with 3000 for a bad key and 4000 for an unknown model.
    """
    detail = code or (f"close code {close_code}" if close_code is not None else "no close frame")
    if code == "invalid_api_key" or (code is None and close_code == 3000):
        return failure_auth(detail, provider=provider, auth=auth)
    if code == "model_not_found" or (code is None and close_code == 4000):
        return failure_not_found(detail, deployment=deployment, provider=provider)
    return Failure(
        "upstream_error",
        f"The voice service refused the session ({detail}). Try again in a moment.",
        4502,
    )


def refusal_code(frame: str | bytes) -> str | None:
    """The error code when a session's first event is an `error` (the session was refused), else None."""
    try:
        event = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") != "error":
        return None
    error = event.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code else "error"


def failure_auth(detail: str, *, provider: Provider, auth: Auth) -> Failure:
    """The service refused the server's key or token."""
    if provider is Provider.OPENAI:
        what, fix = "API key", "The administrator must check OPENAI_API_KEY."
    elif auth is Auth.ENTRA_ID:
        what = "Microsoft Entra ID token"
        fix = (
            "The administrator must give the server's identity the Cognitive Services OpenAI User role "
            "on the resource in AZURE_OPENAI_ENDPOINT."
        )
    else:
        what = "API key"
        fix = "The administrator must check AZURE_OPENAI_API_KEY and that it belongs to AZURE_OPENAI_ENDPOINT."
    return Failure("auth_failed", f"The voice service refused the server's {what} ({detail}). {fix}", 4401)


def failure_not_found(detail: str, *, deployment: str, provider: Provider) -> Failure:
    if provider is Provider.OPENAI:
        return Failure(
            "not_found",
            f"The voice service has no model named '{deployment}' ({detail}). "
            "The administrator must check OPENAI_REALTIME_MODEL and OPENAI_BASE_URL.",
            4404,
        )
    return Failure(
        "not_found",
        f"The voice service has no deployment named '{deployment}' ({detail}). "
        "The administrator must check AZURE_OPENAI_DEPLOYMENT, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION.",
        4404,
    )


def failure_unreachable(host: str, cause: str, *, provider: Provider = Provider.AZURE) -> Failure:
    setting = "OPENAI_BASE_URL" if provider is Provider.OPENAI else "AZURE_OPENAI_ENDPOINT"
    return Failure(
        "unreachable",
        f"The voice service at {host} could not be reached ({cause}). "
        f"The administrator must check {setting} and the server's network.",
        4502,
        retryable=True,
    )


def failure_entra_token() -> Failure:
    """The server's Azure identity gave no token (why is in the server log, not for the user)."""
    return Failure(
        "auth_failed",
        "The server could not get a Microsoft Entra ID token for the voice service. "
        "The administrator must check the server's Azure identity (az login, or its managed identity) "
        "and the server log.",
        4401,
    )


def failure_entra_timeout(seconds: float) -> Failure:
    return Failure(
        "timeout",
        f"Microsoft Entra ID did not give the server a token for the voice service within {seconds:g} s. "
        "Try again in a moment.",
        4504,
        retryable=True,
    )


def failure_timeout(host: str, seconds: float) -> Failure:
    return Failure(
        "timeout",
        f"The voice service at {host} did not complete the connection within {seconds:g} s. Try again in a moment.",
        4504,
        retryable=True,
    )


def failure_local_engine(cause: str) -> Failure:
    return Failure(
        "local_engine_error",
        f"The local voice engine could not start: {cause}",
        4503,
    )


def failure_lost(detail: str) -> Failure:
    """The upstream connection ended in the middle of a conversation."""
    return Failure(
        "upstream_closed",
        f"The connection to the voice service was lost ({detail}). Connect again to start a new conversation.",
        4502,
    )


def failure_expired() -> Failure:
    return Failure(
        "session_expired",
        "The voice service ended the session because it reached its time limit. Connect again to go on.",
        4000,
    )


def failure_too_many_sessions(limit: int) -> Failure:
    return Failure(
        "policy",
        f"You already have {limit} conversation{'s' if limit != 1 else ''} open, the most allowed at once. "
        "End one (close its tab) and connect again.",
        CLOSE_TOO_MANY_SESSIONS,
    )


def failure_budget(message: str) -> Failure:
    return Failure("budget", message, CLOSE_BUDGET)


def failure_session_limit(minutes: float) -> Failure:
    return Failure(
        "session_limit",
        f"This conversation reached the maximum length of {minutes:g} minutes and was ended; it is saved. "
        "Connect again to start a new one.",
        CLOSE_SESSION_LIMIT,
    )


def failure_idle(minutes: float) -> Failure:
    return Failure(
        "idle",
        f"The conversation was ended after {minutes:g} minutes without sound or message from you; it is saved. "
        "Connect again to go on.",
        CLOSE_IDLE,
    )


def failure_abuse(count: int) -> Failure:
    return Failure(
        "policy",
        f"The connection was closed: {count} messages in a minute were refused (too large, malformed or too fast).",
        CLOSE_POLICY,
    )


def failure_database() -> Failure:
    return Failure(
        "database_error",
        "The server cannot save conversations right now, so none is started. Try again in a moment.",
        CLOSE_DATABASE,
    )


def failure_shutdown() -> Failure:
    return Failure(
        "server_shutdown",
        "The server is restarting; this conversation is saved. Connect again in a moment to go on.",
        CLOSE_SERVICE_RESTART,
    )


def failure_staff_ended() -> Failure:
    return Failure(
        "staff_ended",
        "A member of staff ended this conversation; it is saved. Connect again to start a new one.",
        CLOSE_STAFF_ENDED,
    )
