"""Fixtures shared by every test: the real OS users, the demo workflow and the hub."""

import os
import secrets
import subprocess

import pytest

from hubharness import ROOT, USERS, start_hub, stop_hub


def pytest_collection_modifyitems(config, items):
    """Refuse to skip real-component tests silently: they need root on Debian."""
    if os.geteuid() != 0 and any("integration" in str(item.fspath) for item in items):
        raise pytest.UsageError(
            "The integration tests create OS users and run the hub as root: run them as root "
            "(make test), or select tests/unit only."
        )


@pytest.fixture(scope="session")
def password():
    """The password of every test user, new for each test session."""
    value = secrets.token_urlsafe(16)
    subprocess.run([str(ROOT / "scripts" / "users.sh"), value, *USERS], check=True)
    return value


@pytest.fixture(scope="session")
def alice_workflow(password):
    """alice's demo workflow, installed and running for the whole session."""
    script = str(ROOT / "scripts" / "workflow.sh")
    subprocess.run([script, "start", "alice"], check=True, capture_output=True)
    yield "demo"
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
