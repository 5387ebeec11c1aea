"""cylc-slurm on a real one-node Slurm cluster, through the real hub and proxy.

The tests run in file order on one cluster and one hub: the node has one CPU,
so while alice's server runs, any other job waits in the queue.
"""

import json
import os
import time

import pytest
import requests

from hubharness import ROOT, start_hub, stop_hub, wait_for
from slurmharness import remove_slurm, start_slurm
from sshharness import restart_hub

pytestmark = pytest.mark.hub

CONFIG = ROOT / "tests" / "configs" / "batch_config.py"


@pytest.fixture(scope="module")
def slurm():
    cluster = start_slurm()
    yield cluster
    remove_slurm(cluster)


@pytest.fixture(scope="module")
def slurm_hub(password, slurm):
    """The hub in a dict, so that a test can replace it with a restarted one."""
    holder = {"hub": start_hub(password, config=CONFIG, extra_env={"SLURM_CONF": str(slurm.conf)})}
    yield holder
    stop_hub(holder["hub"])


def job_of(slurm, user):
    """Return (job id, state) of ``user``'s newest job, or None."""
    text = slurm.run("squeue", "--noheader", "--states=all", f"--user={user}", "--format=%i %T").stdout
    jobs = [line.split() for line in text.splitlines() if line.strip()]
    if not jobs:
        return None
    return max(jobs, key=lambda job: int(job[0]))


def progress_messages(hub, session, user, expected, timeout=30):
    """Read the spawn progress stream until a message contains ``expected``; return all messages."""
    messages = []
    response = session.get(
        f"{hub.url}/hub/api/users/{user}/server/progress",
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
        stream=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data:"):
            messages.append(json.loads(line[5:]).get("message", ""))
            if expected in messages[-1]:
                break
        if time.monotonic() > deadline:
            break
    response.close()
    return messages


def test_slurm_server_reaches_cylc_ui(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    alice = hub.login("alice")

    response = hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(alice, "alice", timeout=120)

    job = job_of(slurm, "alice")
    assert job is not None
    assert job[1] == "RUNNING"
    page = hub.open(alice, "/user/alice/cylc/")
    assert page.status_code == 200
    assert "/user/alice/cylc" in page.url


def test_viewer_reads_ui_in_job(slurm_hub):
    hub = slurm_hub["hub"]
    bob = hub.login("bob")

    response = hub.graphql(bob, "alice", "query { workflows { id } }")

    # bob may read alice's UI only through the authorization handed to her job.
    assert response.status_code == 200, response.text
    assert not response.json().get("errors"), response.text


def test_queued_job_shows_reason_and_cancels(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    bob = hub.login("bob")

    response = hub.api(bob, "POST", "/users/bob/server")
    assert response.status_code == 202, response.text
    messages = progress_messages(hub, bob, "bob", "estimated start")

    assert any("PENDING (Resources)" in message for message in messages), messages
    assert any("estimated start" in message for message in messages), messages
    job_id, state = job_of(slurm, "bob")
    assert state == "PENDING"

    hub.stop_server(bob, "bob")
    assert job_of(slurm, "bob") == [job_id, "CANCELLED"]


def test_port_report_rejects_bad_requests(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    bob = hub.login("bob")
    url = f"{hub.url}/hub/api/cylc-batch/port"
    response = hub.api(bob, "POST", "/users/bob/server")
    assert response.status_code == 202, response.text
    token_file = "/home/bob/.cylc/hub/jobs/cylc-hub-bob.token"
    bob_token = wait_for(lambda: _read(token_file), 30, message="bob's token file")
    user_token = hub.api(hub.login("alice"), "POST", "/users/alice/tokens", json={}).json()["token"]
    alice_server_token = server_token_in_job(slurm, "alice")

    cases = [
        ({}, {"port": 9999}, 403),
        ({"Authorization": "token not-a-token"}, {"port": 9999}, 403),
        ({"Authorization": f"token {user_token}"}, {"port": 9999}, 403),
        # alice's running server has its port: its token cannot set bob's, nor change its own.
        ({"Authorization": f"token {alice_server_token}"}, {"port": 9999}, 409),
        ({"Authorization": f"token {bob_token}"}, {"port": "9999"}, 400),
        ({"Authorization": f"token {bob_token}"}, {"port": 9999.0}, 400),
        ({"Authorization": f"token {bob_token}"}, {"port": True}, 400),
        ({"Authorization": f"token {bob_token}"}, {"port": 0}, 400),
        ({"Authorization": f"token {bob_token}"}, {"port": 9999, "ip": "10.0.0.1"}, 400),
        ({"Authorization": f"token {bob_token}"}, [9999], 400),
    ]
    for headers, body, status in cases:
        answer = requests.post(url, json=body, headers=headers, timeout=30)
        assert answer.status_code == status, (headers.keys(), body, answer.text)

    assert "Port report rejected" in hub.log_text()
    assert bob_token not in hub.log_text()
    model = hub.server_model(bob, "bob")
    assert model["pending"] == "spawn"
    assert not model["ready"]
    assert "reported port 9999" not in hub.log_text()
    assert hub.server_model(hub.login("alice"), "alice")["ready"]
    hub.stop_server(bob, "bob")


def test_controller_outage_keeps_server(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    alice = hub.login("alice")
    job_before = job_of(slurm, "alice")

    slurm.stop_controller()
    try:
        wait_for(lambda: "query of 1 job(s) failed (2 in a row)" in hub.log_text(), 60, message="two failed queries")
        model = hub.server_model(alice, "alice")
        assert model is not None and model["ready"]
    finally:
        slurm.start_controller()

    wait_for(lambda: "query succeeded again" in hub.log_text(), 60, message="a query to succeed again")
    assert hub.server_model(alice, "alice")["ready"]
    assert job_of(slurm, "alice") == job_before
    assert hub.open(alice, "/user/alice/cylc/").status_code == 200


def test_hub_restart_readopts_running_job(slurm, slurm_hub):
    job_before = job_of(slurm, "alice")
    assert job_before[1] == "RUNNING"

    hub = slurm_hub["hub"] = restart_hub(slurm_hub["hub"])
    assert job_of(slurm, "alice") == job_before
    # The new proxy may not route /hub/ yet when the service is up.
    wait_for(
        lambda: requests.get(f"{hub.url}/hub/login", timeout=10).ok, 30, message="the hub's login page"
    )

    alice = hub.login("alice")
    model = hub.server_model(alice, "alice")
    assert model is not None and model["ready"], hub.log_tail()
    assert hub.open(alice, "/user/alice/cylc/").status_code == 200
    assert job_of(slurm, "alice") == job_before


def test_stop_cancels_job(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    alice = hub.login("alice")
    job_id, _ = job_of(slurm, "alice")

    hub.stop_server(alice, "alice")

    wait_for(
        lambda: job_of(slurm, "alice")[1] not in ("RUNNING", "COMPLETING"),
        30,
        message="alice's job to end",
    )
    assert job_of(slurm, "alice") == [job_id, "CANCELLED"]


def test_rejected_partition_fails_at_once(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    carol = hub.login("carol")
    started = time.monotonic()

    response = hub.api(carol, "POST", "/users/carol/server", json={"partition": "gone"})

    assert time.monotonic() - started < 15
    assert response.status_code >= 400, response.text
    assert "Invalid partition name specified" in response.json()["message"]
    assert hub.server_model(carol, "carol") is None
    assert job_of(slurm, "carol") is None


def test_job_that_dies_fails_with_output(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    dave = hub.login("dave")
    started = time.monotonic()

    response = hub.api(dave, "POST", "/users/dave/server")
    messages = []
    if response.status_code == 202:
        wait_for(lambda: hub.server_model(dave, "dave") is None, 30, message="dave's start to fail")
        messages = [hub.log_text()]
    else:
        messages = [response.json()["message"]]

    assert time.monotonic() - started < 30
    assert "ended before the server started" in messages[0]
    assert "/nonexistent/python3" in messages[0]
    assert job_of(slurm, "dave")[1] in ("FAILED", "COMPLETED")


def test_job_cancelled_outside_hub_stops(slurm, slurm_hub):
    hub = slurm_hub["hub"]
    alice = hub.login("alice")
    response = hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(alice, "alice", timeout=120)
    job_id, _ = job_of(slurm, "alice")

    slurm.run("scancel", job_id)

    wait_for(lambda: hub.server_model(alice, "alice") is None, 30, message="the hub to notice")
    log = hub.log_text()
    assert f"job {job_id} ended outside the hub" in log
    # The hub does not try to cancel a job that is already gone.
    assert f"job {job_id} of alice returned" not in log
    assert f"Cancelled job {job_id} of alice" not in log


def server_token_in_job(slurm, user):
    """Return the API token in the environment of ``user``'s UI server inside a Slurm job."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            raw = open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            continue
        environ = dict(
            item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
        )
        if environ.get("JUPYTERHUB_USER") == user and environ.get("SLURM_JOB_ID"):
            if environ.get("JUPYTERHUB_API_TOKEN"):
                return environ["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no Slurm job process of {user} carries a server token")


def _read(path):
    try:
        with open(path) as file:
            return file.read().strip()
    except FileNotFoundError:
        return None
