"""Serve the app over HTTPS with a self-signed certificate, to try it on a phone on the same network.

Browsers give the microphone only to secure pages: https, or http://localhost. This command
makes (once, in .certs/) a certificate for this machine's names and network addresses, lets
the app answer to those names for this process only, and serves it with uvicorn's TLS.
It is for testing: DEBUG stays as the environment says, and with DEBUG on, error pages show
details to anyone on the network.
"""

import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from channels.routing import get_default_application
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management.base import BaseCommand, CommandError, CommandParser

from voicechat import local_cert
from voicechat.local_cert import LocalCertificate, Names

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8443
# Listening on every interface: the phone may use any of the machine's addresses.
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Command(BaseCommand):
    help = (
        "Serve the app over HTTPS with a self-signed certificate for this machine's names and network "
        "addresses, to try the microphone on a phone on the same network. For testing, not production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}: every interface)"
        )
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
        parser.add_argument(
            "--cert-dir",
            type=Path,
            default=Path(settings.BASE_DIR) / ".certs",
            help="folder of the certificate and its key (default .certs/ in the project)",
        )

    def handle(self, *args, host: str, port: int, cert_dir: Path, **options) -> None:
        if not 0 < port < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {port}.")
        lan_addresses = local_cert.lan_ipv4_addresses()
        names = local_cert.wanted_names(socket.gethostname(), lan_addresses)
        try:
            certificate = local_cert.ensure_certificate(cert_dir, names, datetime.now(UTC))
        except OSError as error:
            raise CommandError(f"Could not write the certificate in {cert_dir}: {error}") from error

        added_hosts = accept_names(names, port)
        application = get_default_application()
        if settings.DEBUG:
            # As runserver does: static files straight from the app's folders while DEBUG is on.
            application = ASGIStaticFilesHandler(application)

        self.stdout.write(describe(certificate, names, host, port, added_hosts))
        self.stdout.flush()
        uvicorn.run(
            application,
            host=host,
            port=port,
            ssl_certfile=str(certificate.cert_file),
            ssl_keyfile=str(certificate.key_file),
            # No proxy in front: the address of the connection is the client's.
            proxy_headers=False,
            lifespan="off",
        )


def accept_names(names: Names, port: int) -> list[str]:
    """Let the app answer to the certificate's names, in this process only; returns the hosts added.

    ALLOWED_HOSTS (which the socket's origin check, AllowedHostsOriginValidator, reads too) and
    CSRF_TRUSTED_ORIGINS are extended before the ASGI application is built, since both are read
    when it is. Other commands, and other processes, keep the configured values.
    """
    module = settings.ASGI_APPLICATION.rpartition(".")[0]
    if module in sys.modules:
        raise CommandError(f"{module} was loaded before serve_https could extend ALLOWED_HOSTS.")
    added = [host for host in names.hosts() if host not in settings.ALLOWED_HOSTS]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, *added]
    origins = [f"https://{host}:{port}" for host in names.hosts()]
    settings.CSRF_TRUSTED_ORIGINS = [
        *settings.CSRF_TRUSTED_ORIGINS,
        *(origin for origin in origins if origin not in settings.CSRF_TRUSTED_ORIGINS),
    ]
    return added


def describe(certificate: LocalCertificate, names: Names, host: str, port: int, added: list[str]) -> str:
    """What the person starting the server needs to know: where to go, and what the phone will show."""
    if host in WILDCARD_HOSTS:
        loopback = {*local_cert.LOOPBACK_NAMES, *map(str, local_cert.LOOPBACK_ADDRESSES)}
        here = ["localhost"]
        phone = [name for name in [*map(str, names.ips), *names.dns] if name not in loopback]
    elif host in LOOPBACK_HOSTS:
        here, phone = [host if ":" not in host else f"[{host}]"], []
    else:
        here, phone = [], [host if ":" not in host else f"[{host}]"]
    made = (
        f"made now: {certificate.made_because}" if certificate.made_because else "kept: it covers every current address"
    )
    lan = [str(ip) for ip in names.ips if ip not in local_cert.LOOPBACK_ADDRESSES]
    lines = [
        "",
        f"Serving voicechat over HTTPS on {host}:{port}.",
        f"Network addresses of this machine: {', '.join(lan) or 'none found'}",
        f"Certificate {certificate.cert_file} ({made}).",
        "",
    ]
    if here:
        lines += ["On this machine, open:", *(f"  https://{name}:{port}/" for name in here)]
    if phone:
        lines += ["On a phone on the same network, open:", *(f"  https://{name}:{port}/" for name in phone)]
        lines += ["  (a name works only where the phone can resolve it; an address needs no name service)"]
    elif host in LOOPBACK_HOSTS:
        lines += [f"Listening on {host} only: a phone cannot reach it (use --host 0.0.0.0)."]
    lines += [
        "",
        "The certificate is self-signed, made on this machine: the phone's browser warns that the",
        "connection is not private. Check that the certificate's SHA-256 fingerprint is",
        f"  {certificate.fingerprint}",
        "then go on (Chrome: Advanced, Proceed; Safari: Show Details, visit this website; Firefox:",
        "Advanced, Accept the Risk). The page may then use the microphone.",
        "",
    ]
    if added:
        lines += [f"Accepted for this process only (ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS): {', '.join(added)}"]
    debug = "on" if settings.DEBUG else "off"
    lines += [f"DEBUG is {debug}, as the environment says. This server is for testing, not production."]
    if settings.DEBUG and host not in LOOPBACK_HOSTS:
        lines += ["With DEBUG on, error pages show the settings to anyone who can reach this server."]
    return "\n".join(lines) + "\n"
