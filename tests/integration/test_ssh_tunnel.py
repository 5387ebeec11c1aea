"""cylc-ssh with the tunnel, and a hub restart that re-adopts running servers."""

import pytest

from hubharness import ROOT, start_hub, stop_hub
from sshharness import remove_site, restart_hub, server_processes, start_site, wait_gone

pytestmark = pytest.mark.hub

SSH_CONFIG = ROOT / "tests" / "configs" / "ssh_config.py"


@pytest.fixture(scope="module")
def ssh_site():
    site = start_site(loads=("5.0", "0.1"))
    yield site
    remove_site(site)


def start_ssh_hub(password, site, tunnel):
    return start_hub(
        password,
        config=SSH_CONFIG,
        extra_env=dict(site.env(), CYLC_HUB_SSH_TUNNEL="1" if tunnel else "0"),
    )


def spawn(hub, user):
    session = hub.login(user)
    response = hub.api(session, "POST", f"/users/{user}/server", json={"user_options": {}})
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(session, user)
    processes = server_processes(hub, user)
    assert len(processes) == 1, processes
    return session, processes[0]


@pytest.mark.parametrize("tunnel", [True, False], ids=["tunnel", "direct"])
def test_restart_readopts_server(password, ssh_site, tunnel):
    hub = start_ssh_hub(password, ssh_site, tunnel)
    try:
        session, (pid, pgid, environ) = spawn(hub, "bob")
        # With the tunnel the server listens on the remote host's loopback only.
        expected_ip = "127.0.0.1" if tunnel else "127.0.0.2"
        assert environ["JUPYTERHUB_SERVICE_URL"].startswith(f"http://{expected_ip}:")
        assert hub.open(session, "/user/bob/cylc/").status_code == 200

        hub = restart_hub(hub)

        session = hub.login("bob")
        assert hub.server_model(session, "bob")["ready"]
        assert hub.open(session, "/user/bob/cylc/").status_code == 200
        assert [process[0] for process in server_processes(hub, "bob")] == [pid]
        if tunnel:
            assert "Tunnel for bob: 127.0.0.1:" in hub.log_text()
        assert "bob still running" in hub.log_text()

        hub.stop_server(session, "bob")
        assert wait_gone(pgid)
    finally:
        for user in ("bob",):
            session = hub.login(user)
            if hub.server_model(session, user) is not None:
                hub.stop_server(session, user)
        stop_hub(hub)
