"""The self-signed certificate of `manage.py serve_https`: the names it covers, and when to make a new one.

Browsers give the microphone only to secure pages. To try the app on a phone on the same
network, the server needs a certificate for the addresses the phone will type; this one is
made on this machine, kept in a folder of its own, and made again when the machine has an
address it does not cover or it is about to expire.
"""

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
# Well under the 825 days Apple's systems accept for a server certificate.
VALID_FOR = timedelta(days=365)
# A certificate with less than this left is replaced before a browser starts refusing it.
RENEW_BEFORE = timedelta(days=30)
# A phone's clock a little behind the computer's must not find the certificate "not yet valid".
BACKDATE = timedelta(days=1)
COMMON_NAME = "voicechat, self-signed on this machine"

LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
# A host name as DNS and Django's ALLOWED_HOSTS both accept it: dot-separated labels of
# letters, digits and inner hyphens.
_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Names:
    """What a certificate covers: host names and IP addresses (its subjectAltNames)."""

    dns: tuple[str, ...]
    ips: tuple[IPAddress, ...]

    def hosts(self) -> list[str]:
        """Every name as a browser puts it in a URL and Django's ALLOWED_HOSTS spells it (IPv6 in brackets)."""
        return [*self.dns, *(f"[{ip}]" if ip.version == 6 else str(ip) for ip in self.ips)]

    def missing_from(self, other: "Names") -> list[str]:
        """The names of this set that `other` does not cover."""
        missing_ips = [str(ip) for ip in self.ips if ip not in other.ips]
        return [name for name in self.dns if name not in other.dns] + missing_ips


@dataclass(frozen=True)
class LocalCertificate:
    """The certificate in use, its files, and why it was made now (None: the one on disk was kept)."""

    certificate: x509.Certificate
    cert_file: Path
    key_file: Path
    made_because: str | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate, as browsers show it: pairs of hex digits."""
        return sha256_fingerprint(self.certificate)

    @property
    def names(self) -> Names:
        return certificate_names(self.certificate)


def lan_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses, read from its network interfaces that are up.

    The interfaces are read (psutil), nothing is sent: every interface counts (Wi-Fi and
    Ethernet both), with or without a default route. Loopback and link-local (169.254.x.x,
    self-assigned when no DHCP answered) addresses are left out.
    """
    stats = psutil.net_if_stats()
    found: set[ipaddress.IPv4Address] = set()
    for interface, addresses in psutil.net_if_addrs().items():
        if interface in stats and not stats[interface].isup:
            continue
        for address in addresses:
            if address.family != socket.AF_INET:
                continue
            ip = ipaddress.IPv4Address(address.address)
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                found.add(ip)
    return [str(ip) for ip in sorted(found)]


def host_names(hostname: str) -> list[str]:
    """The machine's name as a phone may type it: as it is, and with `.local` (mDNS) when it has no dot.

    A name that is not a valid DNS name (an underscore, a space, non-ASCII) is left out.
    """
    name = hostname.strip().rstrip(".").lower()
    if not _HOST_NAME.fullmatch(name) or name in LOOPBACK_NAMES:
        return []
    return [name] if "." in name else [name, f"{name}.local"]


def wanted_names(hostname: str, lan_addresses: list[str]) -> Names:
    """What the certificate must cover: localhost, 127.0.0.1, ::1, the host name and the LAN addresses."""
    dns = [*LOOPBACK_NAMES, *host_names(hostname)]
    ips = list(LOOPBACK_ADDRESSES)
    for address in lan_addresses:
        ip = ipaddress.ip_address(address)
        if ip not in ips:
            ips.append(ip)
    return Names(dns=tuple(dict.fromkeys(dns)), ips=tuple(ips))


def make_certificate(names: Names, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key (ECDSA P-256) and a self-signed server certificate for these names, valid from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    alt_names = [x509.DNSName(name) for name in names.dns] + [x509.IPAddress(ip) for ip in names.ips]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A server certificate, not an authority: it can vouch for nothing but this server.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def certificate_names(certificate: x509.Certificate) -> Names:
    """The host names and addresses a certificate covers (its subjectAltNames)."""
    try:
        alt_names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Names(dns=(), ips=())
    dns = tuple(name.lower() for name in alt_names.get_values_for_type(x509.DNSName))
    return Names(dns=dns, ips=tuple(alt_names.get_values_for_type(x509.IPAddress)))


def certificate_problem(certificate: x509.Certificate, names: Names, now: datetime) -> str | None:
    """Why this certificate will not do for these names now, or None if it will."""
    missing = names.missing_from(certificate_names(certificate))
    if missing:
        return f"it does not cover {', '.join(missing)}"
    if now < certificate.not_valid_before_utc:
        return f"it is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    expires = certificate.not_valid_after_utc
    if expires <= now:
        return f"it expired on {expires:%Y-%m-%d}"
    if expires - now < RENEW_BEFORE:
        return f"it expires on {expires:%Y-%m-%d}"
    return None


def sha256_fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def ensure_certificate(folder: Path, names: Names, now: datetime) -> LocalCertificate:
    """The certificate in `folder` if it covers `names` and is not about to expire; otherwise a new one, saved there."""
    cert_file, key_file = folder / CERT_FILE, folder / KEY_FILE
    reason = _stored_problem(cert_file, key_file, names, now)
    if reason is None:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        return LocalCertificate(certificate, cert_file, key_file, made_because=None)
    certificate, key = make_certificate(names, now)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The key first: a run stopped in between leaves a pair that does not match, which the
    # next run replaces, never a new certificate beside an old key.
    _write_private(key_file, key_pem)
    _write_private(cert_file, certificate.public_bytes(serialization.Encoding.PEM))
    return LocalCertificate(certificate, cert_file, key_file, made_because=reason)


def _stored_problem(cert_file: Path, key_file: Path, names: Names, now: datetime) -> str | None:
    """Why the certificate on disk will not do, or None if it will."""
    if not cert_file.exists():
        return "there was none"
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        return f"the one in {cert_file.parent} could not be read ({error})"
    if key.public_key() != certificate.public_key():
        return "its key does not match it"
    return certificate_problem(certificate, names, now)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, replacing the old one at once (never half-written)."""
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)  # a leftover would keep its own permissions
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(part, path)
