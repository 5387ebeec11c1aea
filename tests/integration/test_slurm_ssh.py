"""cylc-slurm submitting on a login node over SSH: a real sshd on loopback and real Slurm."""

import pytest

from hubharness import ROOT, start_hub, stop_hub, wait_for
from slurmharness import remove_slurm, start_slurm
from sshharness import remove_site, start_site

pytestmark = pytest.mark.hub

CONFIG = ROOT / "tests" / "configs" / "batch_config.py"


@pytest.fixture(scope="module")
def slurm():
    cluster = start_slurm()
    yield cluster
    remove_slurm(cluster)


@pytest.fixture(scope="module")
def login_node():
    site = start_site(loads=(None,), addresses=("127.0.0.1",))
    yield site
    remove_site(site)


@pytest.fixture(scope="module")
def ssh_hub(password, slurm, login_node):
    env = {
        "SLURM_CONF": str(slurm.conf),
        "CYLC_HUB_BATCH_SUBMIT_HOST": login_node.hosts[0].entry,
        "CYLC_HUB_SSH_KEY": str(login_node.client_key),
        "CYLC_HUB_SSH_KNOWN_HOSTS": str(login_node.known_hosts),
    }
    hub = start_hub(password, config=CONFIG, extra_env=env)
    yield hub
    stop_hub(hub)


def test_job_submitted_over_ssh(slurm, login_node, ssh_hub):
    alice = ssh_hub.login("alice")
    entry = login_node.hosts[0].entry

    response = ssh_hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    ssh_hub.wait_ready(alice, "alice", timeout=120)

    log = ssh_hub.log_text()
    assert f"SSH connection alice@{entry} opened" in log
    assert f"SSH connection carol@{entry} opened" in log
    jobs = slurm.run("squeue", "--noheader", "--user=alice", "--format=%i %T").stdout.split()
    assert jobs[1] == "RUNNING"
    assert ssh_hub.open(alice, "/user/alice/cylc/").status_code == 200

    ssh_hub.stop_server(alice, "alice")
    wait_for(
        lambda: slurm.run("squeue", "--noheader", "--states=all", f"--jobs={jobs[0]}", "--format=%T").stdout.strip()
        == "CANCELLED",
        30,
        message="alice's job to be cancelled",
    )
