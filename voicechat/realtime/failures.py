"""Why a conversation cannot start or go on, what the user is told, and how the socket closes."""

from dataclasses import dataclass

# Close codes of the browser socket, besides the upstream ones below (the README lists them all).
CLOSE_POLICY = 1008  # the standard code for a peer that broke the rules
CLOSE_SERVICE_RESTART = 1012  # the standard code for a server going down for a restart
CLOSE_SESSION_LIMIT = 4001
CLOSE_BUDGET = 4402
CLOSE_IDLE = 4408
CLOSE_TOO_MANY_SESSIONS = 4409
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


def failure_for_status(status: int, *, deployment: str, retry_after: float | None = None) -> Failure:
    """The failure for an HTTP status answered to the upstream handshake."""
    retry = {"retryable": status in TRANSIENT_STATUSES, "retry_after": retry_after}
    if status in (401, 403):
        return Failure(
            "auth_failed",
            f"The voice service refused the server's API key (HTTP {status}). "
            "The administrator must check AZURE_OPENAI_API_KEY and that it belongs to AZURE_OPENAI_ENDPOINT.",
            4401,
        )
    if status == 404:
        return Failure(
            "not_found",
            f"The voice service has no deployment named '{deployment}' (HTTP 404). "
            "The administrator must check AZURE_OPENAI_DEPLOYMENT, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION.",
            4404,
        )
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


def failure_unreachable(host: str, cause: str) -> Failure:
    return Failure(
        "unreachable",
        f"The voice service at {host} could not be reached ({cause}). "
        "The administrator must check AZURE_OPENAI_ENDPOINT and the server's network.",
        4502,
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
