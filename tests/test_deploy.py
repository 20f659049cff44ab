"""deploy/ for real: nginx with the example site in front of two app workers started by the unit's command.

Over HTTPS and WSS through nginx: the login page, /healthz, static files from disk, a
conversation, the client's address as the app sees it, requests spread over both workers. The
systemd unit is checked with `systemd-analyze verify` and its ExecStart run as systemd would.
"""

import asyncio
import json
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.app_process import APPEND, ROOT, manage, until, wait_for
from tests.deployment import (
    HOST,
    SYSTEMD_ANALYZE,
    Deployment,
    command_env,
    production_settings,
    start_deployment,
    stop,
    stop_deployment,
    unit_command,
    unit_env,
    unit_text,
    unit_working_directory,
    wait_listening,
)
from tests.fake_service import ThreadedFakeService
from tests.test_static import assert_every_page_file_loaded_hashed, conversation_in_chromium, saved_turns

HEALTHY = {"status": "ok", "database": "ok", "channel_layer": "ok"}
# A client address of its own on the loopback network, to tell it from nginx's 127.0.0.1.
CLIENT_ADDRESS = "127.0.0.2"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with ThreadedFakeService() as service:
        service.script.auto_turn_after_ms = 1000
        service.script.reply_ms = 1200
        running = start_deployment(
            tmp_path_factory.mktemp("deployment"),
            {
                "AZURE_OPENAI_ENDPOINT": service.endpoint,
                "AZURE_OPENAI_API_KEY": service.api_key,
                "AZURE_OPENAI_API_VERSION": "",
            },
        )
        try:
            yield running
        finally:
            stop_deployment(running)


def workers(deployment: Deployment) -> set[str]:
    return {f"{HOST}:{port}" for port in deployment.workers.ports}


def tls(deployment: Deployment) -> ssl.SSLContext:
    context = ssl.create_default_context()
    deployment.certificate.authority.configure_trust(context)
    return context


def client(deployment: Deployment) -> httpx.Client:
    """An HTTPS client that trusts the test's certificate authority, from CLIENT_ADDRESS."""
    return httpx.Client(transport=httpx.HTTPTransport(verify=tls(deployment), local_address=CLIENT_ADDRESS))


def sign_in(http: httpx.Client, deployment: Deployment, password: str, **headers: str) -> httpx.Response:
    """The login form as a browser posts it: the CSRF token from the page, and the page's Origin."""
    page = http.get(f"{deployment.url}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return http.post(
        f"{deployment.url}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": "alice", "password": password},
        headers={"Origin": deployment.url, "Referer": f"{deployment.url}/accounts/login/", **headers},
    )


def test_the_login_page_over_https_and_plain_http_redirected(deployment):
    with client(deployment) as http:
        page = http.get(f"{deployment.url}/accounts/login/")
        plain = http.get(f"{deployment.http_url}/accounts/login/")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert re.search(r'href="/static/voicechat/style\.[0-9a-f]{12}\.css"', page.text)
    # The app believed nginx's X-Forwarded-Proto: the request was secure, so HSTS is sent.
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Secure" in page.headers["Set-Cookie"]
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://{HOST}/accounts/login/"


def test_healthz_answers_over_https_and_plain_http_and_is_not_cached(deployment):
    with client(deployment) as http:
        secure = http.get(f"{deployment.url}/healthz")
        plain = http.get(f"{deployment.http_url}/healthz")
    for response in (secure, plain):
        assert response.status_code == 200 and response.json() == HEALTHY
        assert "no-store" in response.headers["Cache-Control"]


def test_static_files_come_from_disk_hashed_names_cached_for_a_year(deployment):
    manifest = json.loads((deployment.static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["voicechat/main.js"]
    with client(deployment) as http:
        served = http.get(f"{deployment.url}/static/{hashed}", headers={"Accept-Encoding": "gzip"})
        plain = http.get(f"{deployment.url}/static/voicechat/main.js", headers={"Accept-Encoding": "identity"})
        missing = http.get(f"{deployment.url}/static/voicechat/nothing.js")
    # nginx's header, not WhiteNoise's ("max-age=315360000, public, immutable"): nginx answered.
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["Content-Encoding"] == "gzip"  # the .gz collectstatic wrote
    assert served.headers["Content-Type"] == "application/javascript"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.content == (deployment.static_root / hashed).read_bytes()
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "no-cache"
    assert missing.status_code == 404
    static_requests = [r for r in deployment.nginx.requests() if r[1].startswith("/static/")]
    assert static_requests and {upstream for *_, upstream in static_requests} == {"-"}  # no worker was asked


def test_the_app_sees_the_clients_own_address_not_nginxs_nor_a_forged_one(deployment):
    with client(deployment) as http:
        refused = sign_in(http, deployment, "wrong-password", **{"X-Forwarded-For": "203.0.113.9"})
    assert refused.status_code == 200 and "Please enter a correct username and password" in refused.text
    with sqlite3.connect(deployment.database) as db:
        addresses = [row[0] for row in db.execute("SELECT ip_address FROM axes_accessattempt")]
    assert addresses == [CLIENT_ADDRESS]


async def test_a_conversation_turn_over_wss(deployment):
    before = len(deployment.nginx.requests())
    with client(deployment) as http:
        signed_in = sign_in(http, deployment, "s3cret-pass")
        session_key = http.cookies["sessionid"]
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    socket_ = await connect(
        f"wss://{HOST}:{deployment.url.rsplit(':', 1)[1]}/ws/realtime/",
        ssl=tls(deployment),
        origin=deployment.url,
        additional_headers={"Cookie": f"sessionid={session_key}"},
        open_timeout=10,
    )
    try:
        opened = await until(socket_, "voicechat.conversation")
        await until(socket_, "session.updated")
        await socket_.send(APPEND)
        await socket_.send(json.dumps({"type": "input_audio_buffer.commit"}))
        reply = await until(socket_, "response.done")
    finally:
        await socket_.close()
    conversation_id = opened[-1]["conversation_id"]
    assert any(event["type"] == "response.output_audio.delta" for event in reply)

    def turns() -> list[tuple[str, str]]:
        with sqlite3.connect(deployment.database) as db:
            query = "SELECT role, text FROM voicechat_turn WHERE conversation_id = ? ORDER BY seq"
            return db.execute(query, [conversation_id]).fetchall()

    assert await asyncio.to_thread(wait_for, lambda: len(turns()) == 2)
    assert turns() == [("user", "Hello there, how are you?"), ("assistant", "I am fine, thank you for asking.")]
    # nginx upgraded the connection for a worker (it logs a socket once it is closed).
    sockets = await asyncio.to_thread(
        wait_for, lambda: [r for r in deployment.nginx.requests()[before:] if r[1] == "/ws/realtime/"]
    )
    assert [(status, upstream in workers(deployment)) for _, _, status, upstream in sockets] == [(101, True)]


def test_requests_are_spread_over_both_workers(deployment):
    before = len(deployment.nginx.requests())
    with client(deployment) as http:
        statuses = [http.get(f"{deployment.url}/healthz").status_code for _ in range(8)]
    assert statuses == [200] * 8

    def upstreams() -> list[str]:
        return [upstream for _, path, _, upstream in deployment.nginx.requests()[before:] if path == "/healthz"]

    # nginx writes a request's log line after its response: the last one may come a moment later.
    assert wait_for(lambda: len(upstreams()) == 8), upstreams()
    assert set(upstreams()) == workers(deployment)


@pytest.mark.browser
def test_the_chat_page_through_nginx_in_chromium(deployment):
    before, turns_before = len(deployment.nginx.requests()), len(saved_turns(deployment.database))
    seen = conversation_in_chromium(deployment.url)
    manifest = json.loads((deployment.static_root / "staticfiles.json").read_text())["paths"]
    served = [
        (path.removeprefix("/static/"), status)
        for _, path, status, _ in deployment.nginx.requests()[before:]
        if path.startswith("/static/")
    ]
    assert_every_page_file_loaded_hashed(seen, served, manifest)
    assert wait_for(lambda: len(saved_turns(deployment.database)) == turns_before + 2)


# The systemd unit


def test_systemd_analyze_verifies_the_unit(deployment, tmp_path):
    unit = tmp_path / "voicechat@.service"
    unit.write_text(unit_text(deployment.workers.env_file))
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "voicechat@1.service")], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    # And it does find fault: a mistyped directive, a command that is not there.
    unit.write_text(unit_text(deployment.workers.env_file).replace("Type=exec", "Type=exe"))
    faulty = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "voicechat@1.service")], capture_output=True, text=True, timeout=60
    )
    assert "Failed to parse service type" in faulty.stderr


def free_instance() -> str:
    """An instance number whose port (800N) is free here."""
    for instance in "123456789":
        with socket.socket() as probe:
            if probe.connect_ex((HOST, int(f"800{instance}"))) != 0:
                return instance
    raise AssertionError("ports 8001 to 8009 are all taken")


def test_the_units_command_serves_healthz_and_stops_cleanly(deployment):
    instance = free_instance()
    port = int(f"800{instance}")
    env_file = deployment.workers.env_file
    log = env_file.parent / f"instance-{instance}.log"
    command = unit_command(instance, env_file)
    assert f"--port {port}" in " ".join(command)
    with log.open("w") as out:
        worker = subprocess.Popen(
            command, cwd=unit_working_directory(env_file), env=unit_env(env_file), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_listening(worker, port, log)
        # Straight to the worker over plain HTTP, as a load balancer's check would.
        health = httpx.get(f"http://{HOST}:{port}/healthz")
        login = httpx.get(f"http://{HOST}:{port}/accounts/login/")
    finally:
        stop(worker, signal.SIGTERM)
    assert health.status_code == 200 and health.json() == HEALTHY
    assert login.status_code == 301  # anything else is sent to HTTPS
    # uvicorn finishes, then ends by the signal it was sent: systemd counts that as a clean stop.
    said = log.read_text()
    assert worker.returncode == -signal.SIGTERM and "Finished server process" in said, said
    assert "Traceback" not in said and "ERROR" not in said


def test_the_recommended_production_settings_pass_the_deployment_check(tmp_path):
    """deploy/voicechat.env.example with its example values (key, host, paths) filled in."""
    env = command_env(production_settings(tmp_path))
    check = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    before = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert before.returncode != 0 and "voicechat.E008" in before.stderr, before.stderr  # no collectstatic yet
    manage(env, "collectstatic", "--no-input")
    said = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert "System check identified no issues (0 silenced)." in said
