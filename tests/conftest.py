"""Fixtures shared by every test: the real OS users, the demo workflow and the hub."""

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from hubharness import ROOT, USERS, start_hub, stop_hub

# The browser fixtures, the reliability records and the secret scan live
# beside the harness so that every test module can use them.
pytest_plugins = ["browserharness", "reliability", "secretscan"]


def pytest_collection_modifyitems(config, items):
    """Refuse to skip real-component tests silently: they need root on Debian."""
    if os.geteuid() != 0 and any("integration" in str(item.fspath) for item in items):
        raise pytest.UsageError(
            "The integration tests create OS users and run the hub as root: run them as root "
            "(make test), or select tests/unit only."
        )


PASSWORD_FILE = Path("/var/lib/cylc-hub/test-password")


@pytest.fixture(scope="session")
def password():
    """The password of every test user: made once per machine, so test sessions can overlap."""
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = PASSWORD_FILE.read_text().strip()
    else:
        value = secrets.token_urlsafe(16)
        with os.fdopen(descriptor, "w") as file:
            file.write(value)
    subprocess.run(
        [str(ROOT / "scripts" / "users.sh"), *USERS], input=f"{value}\n", text=True, check=True
    )
    return value


@pytest.fixture(scope="session")
def alice_workflow(password):
    """alice's demo workflow, running for the whole session; stopped only if this session played it."""
    script = str(ROOT / "scripts" / "workflow.sh")
    started = subprocess.run([script, "start", "alice"], check=True, capture_output=True, text=True)
    yield "demo"
    if "already running" not in started.stdout:
        subprocess.run([script, "stop", "alice"], check=False, capture_output=True)


@pytest.fixture(scope="session")
def hub(password):
    """The hub from the repository's jupyterhub_config.py, on free loopback ports."""
    running = start_hub(password)
    yield running
    stop_hub(running)


@pytest.fixture(scope="session")
def alice_server(hub, alice_workflow):
    """alice's Cylc UI server, started through the hub API with the form's defaults."""
    session = hub.login("alice")
    response = hub.api(session, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(session, "alice")
    return session
