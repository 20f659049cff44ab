"""The certificate of `manage.py serve_https`: its names, and when a new one is made."""

import hashlib
import ipaddress
import socket
import ssl
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from voicechat import local_cert
from voicechat.local_cert import Names

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LAN = ["192.168.1.23", "10.0.0.7"]


def names(*lan: str, hostname: str = "laptop") -> Names:
    return local_cert.wanted_names(hostname, list(lan))


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def handshake(certificate: local_cert.LocalCertificate, server_hostname: str) -> None:
    """A TLS handshake in memory, the client trusting this certificate alone and checking the name."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certificate.cert_file, certificate.key_file)
    client_context = ssl.create_default_context(cafile=certificate.cert_file)
    to_server, to_client, from_server, from_client = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(to_client, from_client, server_hostname=server_hostname)
    server = server_context.wrap_bio(to_server, from_server, server_side=True)
    pending = [client, server]
    for _ in range(10):
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if not pending:
            return
    raise AssertionError("the handshake did not finish in 10 rounds")


# ---------------------------------------------------------------- names


def test_the_names_cover_loopback_the_host_name_and_the_lan_addresses():
    wanted = names(*LAN)
    assert wanted.dns == ("localhost", "laptop", "laptop.local")
    assert wanted.ips == (ip("127.0.0.1"), ip("::1"), ip("192.168.1.23"), ip("10.0.0.7"))
    assert wanted.hosts() == ["localhost", "laptop", "laptop.local", "127.0.0.1", "[::1]", "192.168.1.23", "10.0.0.7"]


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("Laptop", ["laptop", "laptop.local"]),  # DNS names are case-insensitive: kept in lower case
        ("studio.local", ["studio.local"]),  # macOS's own mDNS name
        ("box.example.org.", ["box.example.org"]),
        ("my_box", []),  # not a DNS name: a browser could not match it
        ("-box", []),
        ("pc\u00e9", []),
        ("localhost", []),  # already there
        ("", []),
    ],
)
def test_the_host_name_as_a_phone_may_type_it(hostname, expected):
    assert local_cert.host_names(hostname) == expected


def test_an_address_given_twice_is_covered_once():
    assert names("192.168.1.23", "192.168.1.23", "127.0.0.1").ips == (ip("127.0.0.1"), ip("::1"), ip("192.168.1.23"))


def test_the_machines_addresses_are_its_own_and_not_loopback():
    addresses = local_cert.lan_ipv4_addresses()
    for address in addresses:
        parsed = ipaddress.IPv4Address(address)
        assert not parsed.is_loopback and not parsed.is_link_local
        # Binding is local (nothing is sent): only this machine's own addresses can be bound.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
    assert addresses == sorted(set(addresses), key=ipaddress.IPv4Address)


# ---------------------------------------------------------------- the certificate


def test_a_new_certificate_is_a_self_signed_server_certificate_for_every_name():
    certificate, key = local_cert.make_certificate(names(*LAN), NOW)
    assert local_cert.certificate_names(certificate) == names(*LAN)
    assert certificate.issuer == certificate.subject
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert certificate.not_valid_before_utc == NOW - timedelta(days=1)
    assert certificate.not_valid_after_utc == NOW + timedelta(days=365)
    assert key.public_key() == certificate.public_key()
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
    assert local_cert.sha256_fingerprint(certificate) == ":".join(f"{byte:02X}" for byte in digest)


def test_tls_accepts_the_certificate_for_each_of_its_names_and_no_other(tmp_path):
    certificate = local_cert.ensure_certificate(tmp_path, names(*LAN), datetime.now(UTC))
    for name in ["localhost", "laptop", "laptop.local", "127.0.0.1", "::1", *LAN]:
        handshake(certificate, name)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(certificate, "192.168.1.99")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(certificate, "other.example")


@pytest.mark.parametrize(
    ("wanted", "now", "problem"),
    [
        (names(*LAN), NOW, None),
        (names(LAN[0]), NOW, None),  # an address gone since: still covered, kept
        (names(*LAN), NOW + timedelta(days=334), None),  # 31 days left
        (names(*LAN, "192.168.5.2"), NOW, "it does not cover 192.168.5.2"),
        (names(*LAN, hostname="studio"), NOW, "it does not cover studio, studio.local"),
        (names(*LAN), NOW + timedelta(days=336), "it expires on 2027-11-25"),  # 29 days left
        (names(*LAN), NOW + timedelta(days=400), "it expired on 2027-11-25"),
        (names(*LAN), NOW - timedelta(days=2), "it is valid only from 2026-11-24 12:00 UTC"),
    ],
)
def test_what_makes_a_certificate_unfit(wanted, now, problem):
    certificate, _ = local_cert.make_certificate(names(*LAN), NOW)
    assert local_cert.certificate_problem(certificate, wanted, now) == problem


# ---------------------------------------------------------------- kept, or made again


def test_made_once_then_kept(tmp_path):
    folder = tmp_path / "certs"
    first = local_cert.ensure_certificate(folder, names(*LAN), NOW)
    assert first.made_because == "there was none"
    assert first.cert_file == folder / "cert.pem" and first.key_file == folder / "key.pem"
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    again = local_cert.ensure_certificate(folder, names(*LAN), NOW + timedelta(days=100))
    assert again.made_because is None
    assert again.fingerprint == first.fingerprint
    assert again.names == names(*LAN)


def test_made_again_when_a_current_address_is_missing(tmp_path):
    first = local_cert.ensure_certificate(tmp_path, names(LAN[0]), NOW)
    moved = local_cert.ensure_certificate(tmp_path, names(LAN[0], "172.20.10.4"), NOW)
    assert moved.made_because == "it does not cover 172.20.10.4"
    assert moved.fingerprint != first.fingerprint
    assert ip("172.20.10.4") in moved.names.ips
    # What is on disk is the new one, with its own key.
    stored = local_cert.ensure_certificate(tmp_path, names(LAN[0], "172.20.10.4"), NOW)
    assert (stored.made_because, stored.fingerprint) == (None, moved.fingerprint)


def test_made_again_when_it_is_about_to_expire(tmp_path):
    first = local_cert.ensure_certificate(tmp_path, names(*LAN), NOW)
    later = NOW + timedelta(days=340)
    renewed = local_cert.ensure_certificate(tmp_path, names(*LAN), later)
    assert renewed.made_because == "it expires on 2027-11-25"
    assert renewed.fingerprint != first.fingerprint
    assert renewed.certificate.not_valid_after_utc == later + timedelta(days=365)


def test_made_again_when_the_files_are_damaged(tmp_path):
    first = local_cert.ensure_certificate(tmp_path, names(*LAN), NOW)
    first.cert_file.write_text("not a certificate")
    damaged = local_cert.ensure_certificate(tmp_path, names(*LAN), NOW)
    assert damaged.made_because.startswith(f"the one in {tmp_path} could not be read")

    # A key that is not the certificate's (a run stopped between writing the two files).
    other_key = tmp_path / "other"
    local_cert.ensure_certificate(other_key, names(*LAN), NOW)
    damaged.key_file.write_bytes((other_key / "key.pem").read_bytes())
    mismatched = local_cert.ensure_certificate(tmp_path, names(*LAN), NOW)
    assert mismatched.made_because == "its key does not match it"
    key = serialization.load_pem_private_key(mismatched.key_file.read_bytes(), password=None)
    assert key.public_key() == mismatched.certificate.public_key()
