"""cylc-pbs through the real hub, with stand-in qsub, qstat and qdel (tests/standins/pbs).

The stand-ins print PBS Pro's output and run each job at once as the user,
so the UI server really starts; they are not PBS.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from hubharness import ROOT, start_hub, stop_hub, wait_for
from secretscan import keep_logs

pytestmark = pytest.mark.hub

CONFIG = ROOT / "tests" / "configs" / "batch_config.py"
STANDINS = ROOT / "tests" / "standins" / "pbs"


@pytest.fixture(scope="module")
def pbs_spool():
    """The stand-ins' spool, writable by every test user, and the PBS_CONF_FILE naming it."""
    root = Path(tempfile.mkdtemp(prefix="cylc-hub-pbs-"))
    root.chmod(0o755)
    spool = root / "spool"
    spool.mkdir()
    spool.chmod(0o777)
    counter = spool / "counter"
    counter.touch()
    counter.chmod(0o666)
    conf = root / "pbs.conf"
    conf.write_text(f"PBS_STANDIN_SPOOL={spool}\nPBS_STANDIN_QUEUES=workq\n")
    conf.chmod(0o644)
    yield spool, conf
    for job in spool.glob("*.json"):
        state = json.loads(job.read_text())
        if state["state"] != "F" and state["pid"]:
            try:
                os.killpg(state["pid"], 15)
            except ProcessLookupError:
                pass
    keep_logs(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pbs_hub(password, pbs_spool):
    spool, conf = pbs_spool
    env = {
        "CYLC_HUB_BATCH_SPAWNER": "cylc-pbs",
        "PBS_CONF_FILE": str(conf),
        "PATH": f"{STANDINS}:{os.environ['PATH']}",
    }
    hub = start_hub(password, config=CONFIG, extra_env=env)
    yield hub
    stop_hub(hub)


def jobs_of(spool, user):
    found = []
    for path in sorted(spool.glob("*.json"), key=lambda path: int(path.stem)):
        job = json.loads(path.read_text())
        if job["owner"] == user:
            found.append(job)
    return found


def progress_until(hub, session, user, expected, timeout=30):
    messages = []
    deadline = time.monotonic() + timeout
    with hub.api(session, "GET", f"/users/{user}/server/progress", stream=True) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]).get("message", ""))
                if expected in messages[-1] or time.monotonic() > deadline:
                    break
    return messages


def test_pbs_server_starts_and_stops(pbs_hub, pbs_spool):
    spool, _ = pbs_spool
    alice = pbs_hub.login("alice")

    response = pbs_hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    pbs_hub.wait_ready(alice, "alice", timeout=120)

    assert jobs_of(spool, "alice")[-1]["state"] == "R"
    assert pbs_hub.open(alice, "/user/alice/cylc/").status_code == 200
    pbs_hub.stop_server(alice, "alice")
    job = jobs_of(spool, "alice")[-1]
    assert job["state"] == "F"
    assert job["exit_status"] == 271


def test_pbs_queued_job_shows_comment(pbs_hub, pbs_spool):
    spool, _ = pbs_spool
    (spool / "hold").touch()
    bob = pbs_hub.login("bob")
    try:
        response = pbs_hub.api(bob, "POST", "/users/bob/server")
        assert response.status_code == 202, response.text
        messages = progress_until(pbs_hub, bob, "bob", "estimated start")

        assert any(
            "is Q (Not Running: Insufficient amount of resource: ncpus), estimated start" in message
            for message in messages
        ), messages
        pbs_hub.stop_server(bob, "bob")
    finally:
        (spool / "hold").unlink()

    job = jobs_of(spool, "bob")[-1]
    assert job["state"] == "F"
    assert job["pid"] == 0


def test_pbs_rejected_queue_fails_at_once(pbs_hub, pbs_spool):
    spool, _ = pbs_spool
    carol = pbs_hub.login("carol")

    response = pbs_hub.api(carol, "POST", "/users/carol/server", json={"queue": "gone"})

    assert response.status_code >= 400, response.text
    assert "qsub: Unknown queue" in response.json()["message"]
    assert jobs_of(spool, "carol") == []


def test_pbs_server_down_keeps_server(pbs_hub, pbs_spool):
    spool, _ = pbs_spool
    alice = pbs_hub.login("alice")
    response = pbs_hub.api(alice, "POST", "/users/alice/server")
    assert response.status_code in (201, 202), response.text
    pbs_hub.wait_ready(alice, "alice", timeout=120)

    (spool / "down").touch()
    try:
        wait_for(
            lambda: "query of 1 job(s) failed (2 in a row)" in pbs_hub.log_text(),
            30,
            message="two failed queries",
        )
        assert pbs_hub.server_model(alice, "alice")["ready"]
    finally:
        (spool / "down").unlink()

    wait_for(lambda: "query succeeded again" in pbs_hub.log_text(), 30, message="qstat to answer")
    assert pbs_hub.server_model(alice, "alice")["ready"]
    pbs_hub.stop_server(alice, "alice")
