"""What a failed upstream connection means for the user, and how the socket closes."""

from dataclasses import dataclass


@dataclass(frozen=True)
class UpstreamFailure:
    reason: str  # an EndReason value
    message: str  # shown to the user: says what to fix, never holds a secret
    close_code: int  # sent to the browser after the error event


def failure_for_status(status: int, *, deployment: str) -> UpstreamFailure:
    """The failure for an HTTP status answered to the upstream handshake."""
    if status in (401, 403):
        return UpstreamFailure(
            "auth_failed",
            f"The voice service refused the server's API key (HTTP {status}). "
            "The administrator must check AZURE_OPENAI_API_KEY and that it belongs to AZURE_OPENAI_ENDPOINT.",
            4401,
        )
    if status == 404:
        return UpstreamFailure(
            "not_found",
            f"The voice service has no deployment named '{deployment}' (HTTP 404). "
            "The administrator must check AZURE_OPENAI_DEPLOYMENT, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION.",
            4404,
        )
    if status == 429:
        return UpstreamFailure(
            "rate_limited",
            "The voice service is throttling requests (HTTP 429): too many sessions or the quota is used up. "
            "Wait a minute and connect again.",
            4429,
        )
    return UpstreamFailure(
        "upstream_error",
        f"The voice service refused the connection (HTTP {status}). Try again in a moment.",
        4502,
    )


def failure_unreachable(host: str, cause: str) -> UpstreamFailure:
    return UpstreamFailure(
        "unreachable",
        f"The voice service at {host} could not be reached ({cause}). "
        "The administrator must check AZURE_OPENAI_ENDPOINT and the server's network.",
        4502,
    )


def failure_timeout(host: str, seconds: float) -> UpstreamFailure:
    return UpstreamFailure(
        "timeout",
        f"The voice service at {host} did not complete the connection within {seconds:g} s. Try again in a moment.",
        4504,
    )


def failure_local_engine(cause: str) -> UpstreamFailure:
    return UpstreamFailure(
        "local_engine_error",
        f"The local voice engine could not start: {cause}",
        4503,
    )


def failure_lost(detail: str) -> UpstreamFailure:
    """The upstream connection ended in the middle of a conversation."""
    return UpstreamFailure(
        "upstream_closed",
        f"The connection to the voice service was lost ({detail}). Connect again to start a new conversation.",
        4502,
    )


def failure_expired() -> UpstreamFailure:
    return UpstreamFailure(
        "session_expired",
        "The voice service ended the session because it reached its time limit. Connect again to go on.",
        4000,
    )
