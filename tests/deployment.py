"""The deploy/ examples made runnable on loopback: the env file, the systemd unit's command, nginx's site.

Each example is used as written, with only its example values replaced (`site_config`,
`unit_command`, `production_settings` list them), so a test of these is a test of the files.
"""

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from tests.app_process import ROOT, free_port, make_session, manage

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"

# The example values of deploy/, as written there.
EXAMPLE_ROOT = "/srv/voicechat"
EXAMPLE_PYTHON = "/srv/voicechat/.venv/bin/python"
EXAMPLE_ENV_FILE = "/etc/voicechat/voicechat.env"
EXAMPLE_HOST = "voice.example.com"
EXAMPLE_CERT = "/etc/letsencrypt/live/voice.example.com/fullchain.pem"
EXAMPLE_KEY = "/etc/letsencrypt/live/voice.example.com/privkey.pem"
EXAMPLE_STATIC_ROOT = "/srv/voicechat/staticfiles/"
EXAMPLE_WORKERS = "    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;\n"
# The tests' host: a loopback address, which the certificate names.
HOST = "127.0.0.1"


def replaced(text: str, values: dict[str, str]) -> str:
    """`text` with each example value replaced; every one must be there (the example has not drifted)."""
    for example, value in values.items():
        assert example in text, f"{example!r} is no longer in the example"
        text = text.replace(example, value)
    return text


def read_env_file(path: Path) -> dict[str, str]:
    """VARIABLE=value lines, as systemd's EnvironmentFile= reads them (a value may be in double quotes)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            value = value.strip()
            values[name.strip()] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return values


def production_settings(tmp: Path, **overrides: str) -> dict[str, str]:
    """deploy/voicechat.env.example with its example values replaced by this machine's.

    A SQLite file of the test's own instead of PostgreSQL; the Redis the suite uses.
    """
    example = read_env_file(DEPLOY / "voicechat.env.example")
    replacements = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp / "staticfiles"),
        "REDIS_URL": os.environ.get("REDIS_URL") or example.get("REDIS_URL", ""),
    }
    missing = set(replacements) - set(example)
    assert not missing, f"no longer in deploy/voicechat.env.example: {missing}"
    return example | replacements | overrides


def command_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a `manage.py` command run by hand with these settings."""
    return {**os.environ, "PYTHONDEVMODE": "", **settings}


def write_env_file(path: Path, settings: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    return path


def unit_text(env_file: Path) -> str:
    """deploy/voicechat@.service for this checkout: its paths replaced."""
    return replaced(
        (DEPLOY / "voicechat@.service").read_text(),
        {EXAMPLE_PYTHON: sys.executable, EXAMPLE_ENV_FILE: str(env_file), EXAMPLE_ROOT: str(ROOT)},
    )


def unit_lines(unit: str, key: str) -> list[str]:
    """The values of a unit's `key=` lines, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", unit)
    return [line.removeprefix(f"{key}=") for line in joined.splitlines() if line.startswith(f"{key}=")]


def exec_start(unit: str) -> str:
    [command] = unit_lines(unit, "ExecStart")
    return command


def unit_working_directory(env_file: Path) -> Path:
    [path] = unit_lines(unit_text(env_file), "WorkingDirectory")
    return Path(path)


def unit_env(env_file: Path) -> dict[str, str]:
    """The environment systemd gives the unit's process: little of its own, the EnvironmentFile= and Environment=."""
    unit = unit_text(env_file)
    [path] = unit_lines(unit, "EnvironmentFile")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **read_env_file(Path(path))}
    for assignment in unit_lines(unit, "Environment"):
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


def unit_command(instance: str, env_file: Path) -> list[str]:
    """The unit's ExecStart as systemd would run it for `instance` (%i)."""
    command = exec_start(unit_text(env_file)).replace("%i", instance)
    assert "%" not in command, f"a specifier the test does not replace: {command}"
    return shlex.split(command)


def worker_command(port: int, env_file: Path) -> list[str]:
    """The unit's ExecStart on any port (not only 8001-8009): `800%i` replaced by it."""
    command = exec_start(unit_text(env_file))
    assert command.count("800%i") == 1, command
    return shlex.split(command.replace("800%i", str(port)))


def wait_listening(process: subprocess.Popen, port: int, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        assert process.poll() is None, f"exited with {process.returncode}: {log.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on {port} within {timeout} s: {log.read_text()}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Certificate:
    """A certificate for 127.0.0.1 from a certificate authority made for the test."""

    authority: trustme.CA
    chain: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> "Certificate":
        authority = trustme.CA()
        leaf = authority.issue_cert(HOST)
        chain, key = folder / "cert.pem", folder / "key.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return cls(authority, chain, key)


def prepare_app(env: dict[str, str]) -> None:
    """What an operator runs before starting the workers: migrate, collectstatic; and a user, alice."""
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "collectstatic", "--no-input", "-v", "0")
    make_session(env, "alice")


@dataclass
class Workers:
    """App workers started as the systemd unit starts them, each logging to a file of its own."""

    env_file: Path
    ports: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, port: int, *extra: str) -> None:
        log = self.env_file.parent / f"worker-{port}.log"
        self.logs.append(log)
        with log.open("w") as out:
            process = subprocess.Popen(
                [*worker_command(port, self.env_file), *extra],
                cwd=unit_working_directory(self.env_file),
                env=unit_env(self.env_file),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        self.ports.append(port)
        wait_listening(process, port, log)

    def stop(self) -> None:
        for process in self.processes:
            stop(process)


def site_config(*, http_port: int, https_port: int, certificate: Certificate, static_root: Path, workers: list[int]):
    """deploy/nginx-site.conf on loopback ports, with the test's certificate, static files and workers."""
    return replaced(
        (DEPLOY / "nginx-site.conf").read_text(),
        {
            "listen 80;": f"listen {HOST}:{http_port};",
            "listen [::]:80;\n": "",
            "listen 443 ssl http2;": f"listen {HOST}:{https_port} ssl http2;",
            "listen [::]:443 ssl http2;\n": "",
            EXAMPLE_CERT: str(certificate.chain),
            EXAMPLE_KEY: str(certificate.key),
            EXAMPLE_HOST: HOST,
            EXAMPLE_STATIC_ROOT: f"{static_root}/",
            EXAMPLE_WORKERS: "".join(f"    server {HOST}:{port};\n" for port in workers),
        },
    )


# The main configuration around the site: every path in the test's folder, and a log of which
# worker answered each request ($upstream_addr).
MAIN_CONFIG = """
{user}
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format upstreams '$request_method $request_uri $status $upstream_addr';
    access_log {folder}/access.log upstreams;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""


class Nginx:
    """Debian's nginx in the foreground, as a child process, in a folder of its own."""

    def __init__(self, folder: Path, site: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "site.conf").write_text(site)
        # Run as root, nginx's workers would take the user nobody, who cannot read the test's folders.
        user = "user root;" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(MAIN_CONFIG.format(user=user, folder=folder))
        self.command = [NGINX, "-p", f"{folder}/", "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
        self.process: subprocess.Popen | None = None

    def check(self) -> str:
        """`nginx -t`: what it says of the configuration (it must accept it)."""
        done = subprocess.run([*self.command, "-t"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def start(self, port: int) -> None:
        log = self.folder / "error.log"
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.process, port, log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGQUIT)  # graceful: finishes open requests

    def requests(self) -> list[tuple[str, str, int, str]]:
        """Each request so far, from nginx's access log: method, path, status, the worker that answered ("-": none)."""
        lines = (self.folder / "access.log").read_text().splitlines()
        fields = (line.split(" ", 3) for line in lines)
        return [(method, uri, int(status), upstream) for method, uri, status, upstream in fields]


@dataclass
class Deployment:
    """nginx in front of two app workers, as deploy/ describes it, on loopback ports."""

    url: str
    http_url: str
    settings: dict[str, str]
    database: Path
    static_root: Path
    certificate: Certificate
    nginx: Nginx
    workers: Workers


def start_deployment(tmp: Path, service_settings: dict[str, str]) -> Deployment:
    """Everything started; call `stop_deployment` in a finally."""
    certificate = Certificate.make(tmp)
    http_port, https_port = free_port(), free_port()
    settings = production_settings(
        tmp,
        **service_settings,
        # The test's HTTPS port is not 443: nginx passes the host without it (Host: $host),
        # and the login form's Origin carries it.
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}:{https_port}",
    )
    prepare_app(command_env(settings))
    workers = Workers(write_env_file(tmp / "voicechat.env", settings))
    nginx: Nginx | None = None
    try:
        for _ in range(2):
            workers.start(free_port())
        static_root = Path(settings["STATIC_ROOT"])
        site = site_config(
            http_port=http_port,
            https_port=https_port,
            certificate=certificate,
            static_root=static_root,
            workers=workers.ports,
        )
        nginx = Nginx(tmp / "nginx", site)
        nginx.check()
        nginx.start(https_port)
    except BaseException:
        if nginx is not None:
            nginx.stop()
        workers.stop()
        raise
    return Deployment(
        url=f"https://{HOST}:{https_port}",
        http_url=f"http://{HOST}:{http_port}",
        settings=settings,
        database=tmp / "db.sqlite3",
        static_root=static_root,
        certificate=certificate,
        nginx=nginx,
        workers=workers,
    )


def stop_deployment(deployment: Deployment) -> None:
    deployment.nginx.stop()
    deployment.workers.stop()
