"""Settings read from the environment: DEBUG's order of sources, and PostgreSQL's connection pool.

DEBUG: the environment, then `.env`, then DEBUG_DEFAULT, which `make run` and `make https` set.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

READ_SETTING = "import json, runpy, sys; print(json.dumps(runpy.run_path(sys.argv[1])[sys.argv[2]], default=str))"
# What the suite's own run sets, which these tests set for themselves.
OWN_VARIABLES = ("DEBUG", "DATABASE_")


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder with the project's settings module in it, and room for a `.env` of the test's own."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "settings.py", tmp_path / "config" / "settings.py")
    return tmp_path


def setting(project: Path, name: str, dotenv: str | None = None, **env: str):
    """The setting `name` as the settings module makes it with this environment (and `.env`)."""
    if dotenv is not None:
        (project / ".env").write_text(dotenv)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(OWN_VARIABLES)}
    done = subprocess.run(
        [sys.executable, "-c", READ_SETTING, str(project / "config" / "settings.py"), name],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def debug(project: Path, dotenv: str | None = None, **env: str) -> str:
    return str(setting(project, "DEBUG", dotenv, **env))


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


POSTGRES = "postgres://voicechat@127.0.0.1:5432/voicechat"


def test_postgresql_gets_a_pool_that_fails_fast_and_checks_its_connections(project):
    database = setting(project, "DATABASES", DATABASE_URL=POSTGRES)["default"]
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 1.0, "reconnect_timeout": 1.0}
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database.get("CONN_MAX_AGE", 0) == 0  # Django refuses a pool beside persistent connections


def test_the_pool_is_sized_from_the_environment(project):
    env = {"DATABASE_URL": POSTGRES, "DATABASE_POOL_MAX_SIZE": "1", "DATABASE_POOL_TIMEOUT": "2.5"}
    pool = setting(project, "DATABASES", **env)["default"]["OPTIONS"]["pool"]
    assert pool == {"min_size": 1, "max_size": 1, "timeout": 2.5, "reconnect_timeout": 2.5}


@pytest.mark.parametrize(
    "env",
    [{"DATABASE_URL": POSTGRES, "DATABASE_POOL_MAX_SIZE": "0"}, {}],
    ids=["turned off (PgBouncer)", "SQLite"],
)
def test_no_pool_when_turned_off_or_on_sqlite(project, env):
    database = setting(project, "DATABASES", **env)["default"]
    assert "pool" not in database.get("OPTIONS", {})
    assert database.get("CONN_HEALTH_CHECKS", False) is False
