"""The client's address behind the configured number of trusted reverse proxies."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address sign-in throttling counts failures against (settings.TRUSTED_PROXIES)."""
    return forwarded_client(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        settings.TRUSTED_PROXIES,
    )


def forwarded_client(remote_addr: str, forwarded_for: str, proxies: int) -> str:
    """The address the outermost of `proxies` trusted proxies saw: X-Forwarded-For's `proxies`-th entry from the right.

    Each proxy appends the address it was reached from, so entries further left were
    written by the client itself and prove nothing.
    """
    if proxies <= 0:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if not hops:
        return remote_addr
    return hops[-min(proxies, len(hops))]
