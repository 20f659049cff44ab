"""DEBUG: the environment, then `.env`, then DEBUG_DEFAULT, which `make run` and `make https` set."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

READ_DEBUG = "import runpy, sys; print(runpy.run_path(sys.argv[1])['DEBUG'])"


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder with the project's settings module in it, and room for a `.env` of the test's own."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "settings.py", tmp_path / "config" / "settings.py")
    return tmp_path


def debug(project: Path, dotenv: str | None = None, **env: str) -> str:
    if dotenv is not None:
        (project / ".env").write_text(dotenv)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("DEBUG")}
    done = subprocess.run(
        [sys.executable, "-c", READ_DEBUG, str(project / "config" / "settings.py")],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_debug_is_off_unless_something_says_otherwise(project):
    assert debug(project) == "False"


def test_the_development_commands_default_is_on(project):
    assert debug(project, DEBUG_DEFAULT="true") == "True"


def test_dotenv_wins_over_the_development_commands_default(project):
    assert debug(project, "DEBUG=false\n", DEBUG_DEFAULT="true") == "False"


def test_the_environment_wins_over_dotenv(project):
    assert debug(project, "DEBUG=false\n", DEBUG="true") == "True"


@pytest.mark.parametrize("target", ["run", "https"])
def test_make_sets_only_the_default(target):
    """What `make run` and `make https` would run (`make -n` prints the commands and runs none)."""
    done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    server = [line for line in done.stdout.splitlines() if "runserver" in line or "serve_https" in line]
    assert len(server) == 1 and server[0].startswith("DEBUG_DEFAULT=true "), done.stdout
    assert "DEBUG=" not in server[0].replace("DEBUG_DEFAULT=", "")
