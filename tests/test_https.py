"""`manage.py serve_https` in a process of its own: the app over TLS, checked against the certificate it made."""

import asyncio
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.app_process import APPEND, ROOT, app_environment, free_port, make_session, manage
from tests.fake_service import ThreadedFakeService
from voicechat import local_cert


@pytest.fixture
def app_env(tmp_path):
    """The server's environment: its own SQLite file, migrated, with a user, pointed at the fake service."""
    with ThreadedFakeService() as service:
        env = app_environment(service, tmp_path / "db.sqlite3", CSRF_TRUSTED_ORIGINS="", DEBUG="false")
        manage(env, "migrate", "--no-input", "-v", "0")
        yield env, make_session(env)


@contextmanager
def serve_https(env: dict, cert_dir: Path, log: Path):
    """`manage.py serve_https` on a free loopback port, until it listens; stopped with SIGTERM at the end."""
    port = free_port()
    command = [sys.executable, "manage.py", "serve_https", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, "--cert-dir", str(cert_dir)], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"serve_https did not listen within 30 s: {log.read_text()}"
            time.sleep(0.1)
        yield port
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        # uvicorn shuts down cleanly, then ends with the signal it was sent, as a process should.
        assert "Finished server process" in log.read_text() and server.returncode == -signal.SIGTERM
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


def trusting(cert_file: Path) -> ssl.SSLContext:
    """A client context that trusts the generated certificate alone, and checks names."""
    return ssl.create_default_context(cafile=cert_file)


def found_addresses(output: str) -> list[str]:
    """The network addresses the command says it found."""
    line = re.search(r"^Network addresses of this machine: (.*)$", output, re.MULTILINE).group(1)
    return [] if line == "none found" else line.split(", ")


async def one_turn_over_tls(port: int, session_key: str, context: ssl.SSLContext, origin: str) -> list[str]:
    """The chat page's socket over wss, logged in: open a conversation, finish one turn; the event types seen."""
    seen = []
    async with connect(
        f"wss://127.0.0.1:{port}/ws/realtime/",
        ssl=context,
        additional_headers={"Cookie": f"sessionid={session_key}"},
        origin=origin,
        open_timeout=10,
    ) as page:
        async with asyncio.timeout(20):
            async for frame in page:
                seen.append(json.loads(frame)["type"])
                if seen[-1] == "session.updated":
                    break
            await page.send(APPEND)
            await page.send(json.dumps({"type": "input_audio_buffer.commit"}))
            async for frame in page:
                seen.append(json.loads(frame)["type"])
                if seen[-1] == "response.done":
                    break
    return seen


def test_the_app_over_https_with_its_own_certificate(app_env, tmp_path):
    env, session_key = app_env
    cert_dir, log = tmp_path / "certs", tmp_path / "serve_https.log"
    with serve_https(env, cert_dir, log) as port:
        context = trusting(cert_dir / "cert.pem")
        output = log.read_text()
        lan = found_addresses(output)
        certificate = x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes())
        names = local_cert.certificate_names(certificate)

        # The certificate covers loopback, this machine's name and every address the command found,
        # which are the addresses of this machine's interfaces.
        assert lan == local_cert.lan_ipv4_addresses()
        assert {"127.0.0.1", "::1", *lan} <= {str(ip) for ip in names.ips}
        assert {"localhost", *local_cert.host_names(socket.gethostname())} <= set(names.dns)
        assert local_cert.sha256_fingerprint(certificate) in output
        assert "made now: there was none" in output
        assert "DEBUG is off, as the environment says" in output

        with httpx.Client(verify=context, timeout=10) as client:
            # The login page, over TLS verified against the certificate: by address and by name.
            for url in (f"https://127.0.0.1:{port}/accounts/login/", f"https://localhost:{port}/accounts/login/"):
                page = client.get(url)
                assert page.status_code == 200, url
                assert 'name="username"' in page.text
            # Every name of the certificate is accepted as the site's host (ALLOWED_HOSTS was
            # extended for this process), and a stranger's is not.
            login = f"https://127.0.0.1:{port}/accounts/login/"
            for host in names.hosts():
                assert (client.get(login, headers={"Host": f"{host}:{port}"})).status_code == 200, host
            assert (client.get(login, headers={"Host": f"evil.example:{port}"})).status_code == 400

            # Signing in from a phone's address: the form's CSRF check passes.
            phone = f"{lan[0] if lan else 'localhost'}:{port}"
            form = client.get(login, headers={"Host": phone})
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            signed_in = client.post(
                login,
                data={"username": "carol", "password": "s3cret-pass", "csrfmiddlewaretoken": token},
                headers={"Host": phone, "Origin": f"https://{phone}", "Referer": f"https://{phone}/accounts/login/"},
            )
            assert signed_in.status_code == 302, signed_in.text[:500]
            assert signed_in.headers["location"] == "/"

        # A conversation over wss, from the page of a LAN address, and from localhost.
        for host in [*lan, "localhost"]:
            seen = asyncio.run(one_turn_over_tls(port, session_key, context, origin=f"https://{host}:{port}"))
            assert seen[0] == "voicechat.conversation" and seen[-1] == "response.done", seen
            assert "response.output_audio.delta" in seen
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(one_turn_over_tls(port, session_key, context, origin=f"https://evil.example:{port}"))
        assert refused.value.response.status_code == 403

        # The names were added for that process only: other commands keep the configured hosts.
        settings_seen = manage(env, "shell", "-c", "from django.conf import settings; print(settings.ALLOWED_HOSTS)")
        assert settings_seen.strip().splitlines()[-1] == "['127.0.0.1']"

    # Started again: the certificate is kept, so a phone that accepted it is not asked again.
    with serve_https(env, cert_dir, log):
        output = log.read_text()
        assert "kept: it covers every current address" in output
        assert local_cert.sha256_fingerprint(certificate) in output


def test_a_bad_port_is_refused_with_a_clear_error(app_env, tmp_path):
    env, _ = app_env
    done = subprocess.run(
        [sys.executable, "manage.py", "serve_https", "--port", "70000", "--cert-dir", str(tmp_path / "certs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--port must be between 1 and 65535, not 70000." in done.stderr
    assert not (tmp_path / "certs").exists()
