"""cylc-ssh through the real hub: two sshd hosts on loopback, real users, the real Cylc UI server.

The hosts 127.0.0.1 (load 5.0) and 127.0.0.2 (load 0.1) are two sshd
processes on this machine. Each sets ``CYLC_HUB_TEST_LOAD`` in its sessions,
and the test config's ``load_command`` prints it.
"""

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

from hubharness import ROOT, start_hub, stop_hub, wait_for
from sshharness import (
    readable_files_containing,
    remove_site,
    server_processes,
    spawn_failure,
    start_site,
    wait_gone,
)

pytestmark = pytest.mark.hub

SSH_CONFIG = ROOT / "tests" / "configs" / "ssh_config.py"


@pytest.fixture(scope="module")
def ssh_site():
    site = start_site(loads=("5.0", "0.1"))
    yield site
    remove_site(site)


@pytest.fixture(scope="module")
def overrides(ssh_site):
    """Write per-user spawner options that the test config applies at the next spawn."""
    path = ssh_site.directory / "overrides.json"
    path.write_text("{}")

    def write(options_by_user):
        path.write_text(json.dumps(options_by_user))

    write.path = path
    yield write
    path.write_text("{}")


@pytest.fixture(scope="module")
def ssh_hub(password, ssh_site, overrides):
    env = dict(ssh_site.env(), CYLC_HUB_SSH_OVERRIDES=str(overrides.path))
    hub = start_hub(password, config=SSH_CONFIG, extra_env=env)
    yield hub
    stop_all_servers(hub)
    stop_hub(hub)


def stop_all_servers(hub):
    """Stop every test user's server: with cleanup_servers off, the hub leaves them running."""
    for user in ("alice", "bob", "carol", "dave"):
        session = hub.login(user)
        if hub.server_model(session, user) is not None:
            hub.stop_server(session, user)


def only_server(hub, user):
    processes = server_processes(hub, user)
    assert len(processes) == 1, f"expected one UI server of {user}: {processes}"
    return processes[0]


def test_spawn_picks_least_loaded_host(ssh_hub):
    alice = ssh_hub.login("alice")

    response = ssh_hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    ssh_hub.wait_ready(alice, "alice")

    pid, pgid, environ = only_server(ssh_hub, "alice")
    assert environ["JUPYTERHUB_SERVICE_URL"].startswith("http://127.0.0.2:")
    ui = ssh_hub.open(alice, "/user/alice/cylc/")
    assert ui.status_code == 200

    ssh_hub.stop_server(alice, "alice")
    assert wait_gone(pgid)


def test_token_hidden_from_others(ssh_hub, ssh_site):
    bob = ssh_hub.login("bob")
    response = ssh_hub.api(bob, "POST", "/users/bob/server")
    assert response.status_code in (201, 202), response.text
    ssh_hub.wait_ready(bob, "bob")
    pid, pgid, environ = only_server(ssh_hub, "bob")
    token = environ["JUPYTERHUB_API_TOKEN"]
    assert len(token) >= 16

    ps_output = subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout
    assert "hubapp" in ps_output
    assert token not in ps_output
    found = readable_files_containing(
        token, ["/home/bob", "/tmp", "/var/tmp", "/dev/shm", str(ssh_site.directory)]
    )
    assert found == []
    assert token not in ssh_hub.log_text()

    state_dir = Path("/home/bob/.cylc/hub/default")
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "uiserver.log").stat().st_mode) == 0o600
    config = (state_dir / "jupyter_server_config.py").read_text()
    assert "site_authorization" in config
    assert "UI authorization for bob from cylc-access" in ssh_hub.log_text()

    ssh_hub.stop_server(bob, "bob")
    assert wait_gone(pgid)


def test_form_lists_and_uses_chosen_host(ssh_hub, ssh_site):
    carol = ssh_hub.login("carol")
    first = ssh_site.hosts[0]

    page = carol.get(f"{ssh_hub.url}/hub/spawn/carol", timeout=30).text
    for host in ssh_site.hosts:
        assert f'value="{host.entry}"' in page

    # JupyterHub 6.1's spawn page posts its form to a URL that carries _xsrf in the query.
    response = carol.post(
        f"{ssh_hub.url}/hub/spawn/carol",
        params={"_xsrf": carol.cookies.get("_xsrf", path="/hub/")},
        data={"host": first.entry, "workflow": "", "log_level": "INFO"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    ssh_hub.wait_ready(carol, "carol")

    pid, pgid, environ = only_server(ssh_hub, "carol")
    assert environ["JUPYTERHUB_SERVICE_URL"].startswith("http://127.0.0.1:")
    assert ssh_hub.open(carol, "/user/carol/cylc/").status_code == 200

    ssh_hub.stop_server(carol, "carol")
    assert wait_gone(pgid)


def test_failover_when_sshd_stopped(ssh_hub, ssh_site):
    dave = ssh_hub.login("dave")
    least_loaded = ssh_site.hosts[1]
    least_loaded.stop()
    try:
        response = ssh_hub.api(dave, "POST", "/users/dave/server")
        assert response.status_code in (201, 202), response.text
        ssh_hub.wait_ready(dave, "dave")
        pid, pgid, environ = only_server(ssh_hub, "dave")
        assert environ["JUPYTERHUB_SERVICE_URL"].startswith("http://127.0.0.1:")
        assert f"Skipping {least_loaded.address}:{least_loaded.port} for dave" in ssh_hub.log_text()
        ssh_hub.stop_server(dave, "dave")
        assert wait_gone(pgid)

        message, _ = spawn_failure(
            ssh_hub, dave, "dave", {"user_options": {"host": least_loaded.entry}}
        )
        assert f"{least_loaded.address} (port {least_loaded.port}) cannot be reached" in message
        assert "choose another host" in message
    finally:
        least_loaded.start()


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"ssh_keyfile": "WRONG_KEY"}, "SSH authentication as dave on 127.0.0.2 failed"),
        ({"known_hosts": "CHANGED_KNOWN_HOSTS"}, "The SSH host key of 127.0.0.2 (port"),
        (
            {"cmd": ["cylc-not-installed", "hubapp"]},
            "The command 'cylc-not-installed' was not found on 127.0.0.2",
        ),
        (
            {"cmd": ["sh", "-c", "echo cylc-hub-test-early-exit; exit 3"]},
            "on 127.0.0.2 exited while starting. The end of its log:\ncylc-hub-test-early-exit",
        ),
    ],
    ids=["wrong-key", "changed-host-key", "missing-command", "exits-at-once"],
)
def test_failure_message(ssh_hub, ssh_site, overrides, options, expected):
    paths = {
        "WRONG_KEY": str(ssh_site.wrong_key),
        "CHANGED_KNOWN_HOSTS": str(ssh_site.changed_known_hosts),
    }
    options = {
        name: paths.get(value, value) if isinstance(value, str) else value
        for name, value in options.items()
    }
    overrides({"dave": options})
    dave = ssh_hub.login("dave")
    try:
        message, _ = spawn_failure(ssh_hub, dave, "dave")
    finally:
        overrides({})

    assert expected in message
    assert ssh_hub.server_model(dave, "dave") is None
    assert server_processes(ssh_hub, "dave") == []


def test_changed_host_key_says_what_to_do(ssh_hub, ssh_site, overrides):
    overrides({"dave": {"known_hosts": str(ssh_site.changed_known_hosts)}})
    dave = ssh_hub.login("dave")
    try:
        message, _ = spawn_failure(
            ssh_hub, dave, "dave", {"user_options": {"host": ssh_site.hosts[0].entry}}
        )
    finally:
        overrides({})

    assert f"The SSH host key of 127.0.0.1 (port {ssh_site.hosts[0].port}) has changed" in message
    assert "update that file" in message


def test_timeout_reports_progress(ssh_hub, overrides):
    # The server's arguments follow "sh", which takes them as $0, $1 and so on.
    # The spawn stays pending well past the hub's response at slow_spawn_timeout (10 s),
    # so that the progress stream still replays every event.
    overrides({"dave": {"cmd": ["sh", "-c", "sleep 300", "sh"], "start_timeout": 25}})
    dave = ssh_hub.login("dave")
    try:
        message, events = spawn_failure(ssh_hub, dave, "dave")
    finally:
        overrides({})

    texts = [event.get("message", "") for event in events]
    assert any(text.startswith("Connecting to 127.0.0.2 over SSH") for text in texts), texts
    assert "Starting the Cylc UI server on 127.0.0.2" in texts
    assert "Waiting for the Cylc UI server to respond" in texts
    assert "did not respond within 25 s" in message
    # The server that never responded was stopped, not left behind.
    wait_for(lambda: server_processes(ssh_hub, "dave") == [], 10, message="dave's sleep to end")


def test_unanswered_poll_keeps_server(ssh_hub, ssh_site):
    alice = ssh_hub.login("alice")
    host = ssh_site.hosts[1]
    response = ssh_hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    ssh_hub.wait_ready(alice, "alice")
    pid, pgid, _ = only_server(ssh_hub, "alice")

    host.stop()
    try:
        wait_for(
            lambda: "Polling alice failed (1 of 3), state unknown" in ssh_hub.log_text(),
            20,
            message="a failed poll of alice's server",
        )
        assert ssh_hub.server_model(alice, "alice") is not None
    finally:
        host.start()

    # Two more poll intervals: a third failure in a row would count the server as stopped.
    time.sleep(11)
    assert ssh_hub.server_model(alice, "alice") is not None
    assert "counting it as stopped" not in ssh_hub.log_text()
    assert f"SSH connection alice@{host.address}:{host.port} opened" in ssh_hub.log_text()
    assert ssh_hub.open(alice, "/user/alice/cylc/").status_code == 200
    ssh_hub.stop_server(alice, "alice")
    assert wait_gone(pgid)
