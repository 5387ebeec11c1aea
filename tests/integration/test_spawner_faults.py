"""Spawner faults with real components: hub restarts, sshd outages and slurmctld outages.

Every test drives the real hub and proxy, real Cylc UI servers, real sshd
processes on 127.0.0.1 and 127.0.0.2 and a real one-node Slurm. The faults
are real too: the hub, sshd or slurmctld process is stopped by its PID and
started again. The only stand-ins are site hooks that make a fault land at a
known step: a prologue that waits before the launcher runs, and a server
command that waits before it starts ``cylc hubapp``.
"""

import json
import time
from dataclasses import dataclass
from typing import Callable

import pytest

from faultharness import (
    ACTIVE_JOB_STATES,
    Background,
    LogMark,
    recorded_states,
    stop_leftover_servers,
    unrecorded_jobs,
    unrecorded_servers,
    wait_ui,
    write_local_config,
)
from hubharness import ROOT, VENV, start_hub, stop_hub, wait_for
from slurmharness import remove_slurm, start_slurm
from sshharness import remove_site, restart_hub, server_processes, spawn_failure, start_site

pytestmark = pytest.mark.hub

SSH_CONFIG = ROOT / "tests" / "configs" / "ssh_config.py"
BATCH_CONFIG = ROOT / "tests" / "configs" / "batch_config.py"


# --- fixtures: one SSH site, one Slurm cluster and one hub for each ---------------


@pytest.fixture(scope="module")
def ssh_site():
    site = start_site(loads=("5.0", "0.1"))
    yield site
    remove_site(site)


@pytest.fixture(scope="module")
def overrides(ssh_site):
    """Write per-user spawner options that ``ssh_config.py`` applies at the next spawn."""
    path = ssh_site.directory / "fault-overrides.json"
    path.write_text("{}")

    def write(options_by_user):
        path.write_text(json.dumps(options_by_user))

    write.path = path
    yield write
    path.write_text("{}")


@pytest.fixture(scope="module")
def ssh_hub(password, ssh_site, overrides):
    """The cylc-ssh hub in a dict, so that a test can replace it with a restarted one."""
    env = dict(ssh_site.env(), CYLC_HUB_SSH_OVERRIDES=str(overrides.path))
    holder = {"hub": start_hub(password, config=SSH_CONFIG, extra_env=env)}
    yield holder
    stop_all_servers(holder["hub"])
    stop_leftover_servers(holder["hub"])
    stop_hub(holder["hub"])


@pytest.fixture(scope="module")
def slurm():
    cluster = start_slurm()
    yield cluster
    remove_slurm(cluster)


@pytest.fixture(scope="module")
def slurm_hub(password, slurm):
    holder = {"hub": start_hub(password, config=BATCH_CONFIG, extra_env={"SLURM_CONF": str(slurm.conf)})}
    yield holder
    stop_all_servers(holder["hub"])
    stop_hub(holder["hub"])


def stop_all_servers(hub):
    """Stop every test user's server: with cleanup_servers off, the hub leaves them running."""
    for user in ("alice", "bob", "carol", "dave"):
        session = hub.login(user)
        if hub.server_model(session, user) is not None:
            hub.stop_server(session, user)


def spawn(hub, user, options=None, timeout=120):
    """Start ``user``'s server through the hub API; return the logged-in session once it is ready."""
    session = hub.login(user)
    response = hub.api(
        session, "POST", f"/users/{user}/server", json=options or {"user_options": {}}
    )
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(session, user, timeout=timeout)
    return session


def job_of(slurm, user):
    """Return ``(job id, state)`` of ``user``'s newest job, or None."""
    text = slurm.run(
        "squeue", "--noheader", "--states=all", f"--user={user}", "--format=%i %T"
    ).stdout
    jobs = [tuple(line.split()) for line in text.splitlines() if line.strip()]
    return max(jobs, key=lambda job: int(job[0])) if jobs else None


# --- 1. hub restart with running servers ---------------------------------------------


@dataclass
class RestartCase:
    """One spawner's hub, the user whose server runs there, and how to find leftovers."""

    kind: str
    holder: dict
    user: str
    orphans: Callable  # hub -> {id: detail} of servers or jobs the hub does not record
    running: Callable  # hub -> whether the user's server process or job still exists


@pytest.fixture
def restart_case(request, password, tmp_path):
    """A hub of the requested spawner, with cleanup_servers off."""
    kind = request.param
    if kind == "local":
        holder = {"hub": start_hub(password, config=write_local_config(tmp_path))}
        yield RestartCase(
            kind, holder, "carol", unrecorded_servers, lambda hub: server_processes(hub, "carol")
        )
        stop_all_servers(holder["hub"])
        stop_leftover_servers(holder["hub"])
        stop_hub(holder["hub"])
    elif kind == "ssh":
        holder = request.getfixturevalue("ssh_hub")
        yield RestartCase(
            kind, holder, "bob", unrecorded_servers, lambda hub: server_processes(hub, "bob")
        )
    else:
        cluster = request.getfixturevalue("slurm")
        holder = request.getfixturevalue("slurm_hub")

        def running(hub):
            job = job_of(cluster, "alice")
            return job is not None and job[1] in ACTIVE_JOB_STATES

        yield RestartCase(
            kind, holder, "alice", lambda hub: unrecorded_jobs(hub, cluster), running
        )


@pytest.mark.parametrize("restart_case", ["local", "ssh", "slurm"], indirect=True)
def test_restart_readopts_server(restart_case, reliability):
    case = restart_case
    user = case.user
    hub = case.holder["hub"]
    spawn(hub, user, timeout=180)
    recorded = recorded_states(hub)[user]
    assert case.running(hub)
    assert case.orphans(hub) == {}

    started = time.monotonic()
    hub = case.holder["hub"] = restart_hub(hub)
    restart_s = time.monotonic() - started

    session = hub.login(user)
    model = wait_for(lambda: hub.server_model(session, user), 30, message=f"{user}'s server")
    assert model["ready"], hub.log_tail()
    wait_ui(hub, session, user)
    readopt_s = time.monotonic() - started

    # The same process group or job, still the only one, and still recorded.
    assert recorded_states(hub)[user] == recorded
    assert case.running(hub)
    assert case.orphans(hub) == {}
    assert "counting it as stopped" not in hub.log_text()
    assert "ended outside the hub" not in hub.log_text()

    hub.stop_server(session, user)
    wait_for(lambda: not case.running(hub), 30, message=f"{user}'s server to end")
    assert case.orphans(hub) == {}

    reliability.record(
        "faults",
        f"Restarted the hub while {user}'s cylc-{case.kind} server ran, then opened its UI "
        "through the hub.",
        "The restarted hub re-adopted the same server, the UI answered, and no server or job "
        "was left without a hub record before the restart, after it, or after the stop.",
        hub_restart_s=round(restart_s, 1),
        readopt_to_ui_s=round(readopt_s, 1),
    )


def test_restart_during_ssh_spawn_adopts_server(ssh_hub, ssh_site, overrides, reliability):
    hub = ssh_hub["hub"]
    host = ssh_site.hosts[1]
    # The server waits before it starts, so that the hub restarts while it waits for it.
    overrides({"dave": {"cmd": ["sh", "-c", 'sleep 8; exec cylc hubapp "$@"', "sh"]}})
    dave = hub.login("dave")
    mark = LogMark(hub)
    options = {"user_options": {"host": host.entry}}
    request = Background(lambda: hub.api(dave, "POST", "/users/dave/server", json=options))
    try:
        mark.wait(f"started on {host.address}: pid", 60)
        started = time.monotonic()
        hub = ssh_hub["hub"] = restart_hub(hub)
    finally:
        overrides({})
    try:
        request.result(timeout=60)
    except OSError:
        pass  # the stopped hub closed the request's connection

    dave = hub.login("dave")
    model = wait_for(
        lambda: (hub.server_model(dave, "dave") or {}).get("ready"),
        120,
        message="dave's server to be adopted",
    )
    assert model
    wait_ui(hub, dave, "dave")
    adopt_s = time.monotonic() - started
    assert "dave still running" in hub.log_text()
    assert unrecorded_servers(hub) == {}

    hub.stop_server(dave, "dave")
    wait_for(lambda: server_processes(hub, "dave") == [], 30, message="dave's server to end")
    assert unrecorded_servers(hub) == {}
    reliability.record(
        "faults",
        "Restarted the hub after the launcher had started dave's cylc-ssh server and while the "
        "hub waited for it to respond.",
        "The restarted hub found the server in its record, waited for it and adopted it, so "
        "no server was left without a record.",
        restart_to_ui_s=round(adopt_s, 1),
    )


# --- 2. sshd stopped and started again -------------------------------------------------


def marker_path(site, name):
    """Return a path below the site that every test user may create, for a prologue to touch."""
    directory = site.directory / "markers"
    directory.mkdir(exist_ok=True)
    directory.chmod(0o1777)
    path = directory / name
    path.unlink(missing_ok=True)
    return path


def test_sshd_outage_during_polls_keeps_server(ssh_hub, ssh_site, reliability):
    hub = ssh_hub["hub"]
    host = ssh_site.hosts[1]
    alice = spawn(hub, "alice")
    pid = recorded_states(hub)["alice"]["pid"]
    mark = LogMark(hub)

    host.stop()
    stopped = time.monotonic()
    try:
        mark.wait("Polling alice failed (2 of 3), state unknown", 30)
        outage_s = time.monotonic() - stopped
        model = hub.server_model(alice, "alice")
        assert model is not None
        assert model["ready"]
        assert [process[0] for process in server_processes(hub, "alice")] == [pid]
    finally:
        host.start()
    recovery_s = mark.wait(f"SSH connection alice@{host.entry} opened", 30)

    # One more poll interval: the poll after the reconnection succeeds and resets the count.
    time.sleep(6)
    assert "counting it as stopped" not in mark.text()
    assert hub.server_model(alice, "alice")["ready"]
    wait_ui(hub, alice, "alice")
    assert recorded_states(hub)["alice"]["pid"] == pid
    assert unrecorded_servers(hub) == {}

    hub.stop_server(alice, "alice")
    wait_for(lambda: server_processes(hub, "alice") == [], 30, message="alice's server to end")
    reliability.record(
        "faults",
        "Stopped the sshd of the host running alice's cylc-ssh server for two failed polls, "
        "then started it again.",
        "The hub kept the server while its state was unknown, reconnected when sshd was back, "
        "and the same server answered through the hub.",
        outage_s=round(outage_s, 1),
        failed_polls=2,
        reconnect_after_sshd_start_s=round(recovery_s, 1),
    )


@pytest.fixture
def tunnel_hub(password, ssh_site):
    """A cylc-ssh hub whose proxy reaches each server through an SSH tunnel."""
    env = dict(ssh_site.env(), CYLC_HUB_SSH_TUNNEL="1")
    hub = start_hub(password, config=SSH_CONFIG, extra_env=env)
    yield hub
    stop_all_servers(hub)
    stop_leftover_servers(hub)
    stop_hub(hub)


def test_sshd_outage_rebuilds_tunnel(tunnel_hub, ssh_site, reliability):
    hub = tunnel_hub
    host = ssh_site.hosts[1]
    bob = spawn(hub, "bob")
    pid = recorded_states(hub)["bob"]["pid"]
    mark = LogMark(hub)

    host.stop()
    try:
        mark.wait("Polling bob failed (1 of 3), state unknown", 30)
    finally:
        host.start()
    started = time.monotonic()
    mark.wait("Tunnel for bob: 127.0.0.1:", 30)
    ui_s = wait_ui(hub, bob, "bob", timeout=30)
    recovery_s = time.monotonic() - started

    assert recorded_states(hub)["bob"]["pid"] == pid
    assert unrecorded_servers(hub) == {}
    assert "counting it as stopped" not in mark.text()
    hub.stop_server(bob, "bob")
    wait_for(lambda: server_processes(hub, "bob") == [], 30, message="bob's server to end")
    reliability.record(
        "faults",
        "Stopped and started the sshd that carries the tunnel to bob's cylc-ssh server.",
        "The hub rebuilt the tunnel on the next poll and the same server answered through "
        "the hub again.",
        sshd_start_to_ui_s=round(recovery_s, 1),
        ui_after_tunnel_s=round(ui_s, 1),
    )


def test_sshd_outage_during_launch_fails_clearly(ssh_hub, ssh_site, overrides, reliability):
    hub = ssh_hub["hub"]
    host = ssh_site.hosts[1]
    marker = marker_path(ssh_site, "dave-launch")
    # The prologue runs in the SSH session right before the launcher: sshd stops while it waits.
    prologue = f"export PATH={VENV / 'bin'}:$PATH\ntouch {marker}\nsleep 20"
    overrides({"dave": {"prologue": prologue}})
    dave = hub.login("dave")
    options = {"user_options": {"host": host.entry}}

    requested = time.monotonic()
    failure = Background(spawn_failure, hub, dave, "dave", options)
    try:
        wait_for(marker.exists, 60, message="the prologue to run")
        host.stop()
        message, _ = failure.result(timeout=90)
        fail_s = time.monotonic() - requested
    finally:
        overrides({})
        host.start()

    assert host.address in message
    assert "SSH connection" in message
    assert "Try again later" in message
    assert hub.server_model(dave, "dave") is None
    assert unrecorded_servers(hub) == {}

    started = time.monotonic()
    spawn(hub, "dave", options)
    retry_s = time.monotonic() - started
    wait_ui(hub, dave, "dave")
    assert unrecorded_servers(hub) == {}
    hub.stop_server(dave, "dave")
    reliability.record(
        "faults",
        "Stopped sshd while the SSH session that launches dave's server ran, then started it "
        "and requested the server again.",
        "The spawn failed with a message naming the host, the SSH connection and what to do; "
        "no server was left behind, and the retry after sshd was back started the server.",
        request_to_failure_s=round(fail_s, 1),
        retry_to_ready_s=round(retry_s, 1),
    )


def test_sshd_outage_while_server_starts(ssh_hub, ssh_site, overrides, reliability):
    hub = ssh_hub["hub"]
    host = ssh_site.hosts[1]
    # The server waits before it starts, so that sshd stops while the hub waits for it.
    overrides({"dave": {"cmd": ["sh", "-c", 'sleep 8; exec cylc hubapp "$@"', "sh"]}})
    dave = hub.login("dave")
    mark = LogMark(hub)

    requested = time.monotonic()
    spawned = Background(spawn, hub, "dave", {"user_options": {"host": host.entry}})
    try:
        mark.wait(f"started on {host.address}: pid", 60)
        host.stop()
        spawned.result(timeout=120)
        ready_s = time.monotonic() - requested
    finally:
        overrides({})
        host.start()

    assert "exited while starting" not in mark.text()
    wait_ui(hub, dave, "dave")
    mark.wait(f"SSH connection dave@{host.entry} opened", 30)
    assert unrecorded_servers(hub) == {}
    assert hub.server_model(dave, "dave")["ready"]

    hub.stop_server(dave, "dave")
    wait_for(lambda: server_processes(hub, "dave") == [], 30, message="dave's server to end")
    reliability.record(
        "faults",
        "Stopped sshd after the launcher had started dave's server and while the hub waited "
        "for it to respond, then started sshd again.",
        "The hub kept waiting over HTTP instead of failing on the lost SSH check, the server "
        "became ready, and no server was left without a hub record.",
        request_to_ready_s=round(ready_s, 1),
    )


def test_long_sshd_outage_leaves_no_orphan(ssh_hub, ssh_site, reliability):
    hub = ssh_hub["hub"]
    host = ssh_site.hosts[1]
    carol = spawn(hub, "carol")
    old_pid = recorded_states(hub)["carol"]["pid"]
    mark = LogMark(hub)

    host.stop()
    stopped = time.monotonic()
    try:
        mark.wait("Polling carol failed 3 times, counting it as stopped", 40)
        wait_for(lambda: hub.server_model(carol, "carol") is None, 30, message="the hub to drop it")
        outage_s = time.monotonic() - stopped
        # The server still runs on the unreachable host, and the hub still records it.
        assert old_pid in [process[0] for process in server_processes(hub, "carol")]
        assert unrecorded_servers(hub) == {}
    finally:
        host.start()

    spawn(hub, "carol", {"user_options": {"host": host.entry}})
    wait_ui(hub, carol, "carol")
    new_pid = recorded_states(hub)["carol"]["pid"]
    assert new_pid != old_pid
    wait_for(
        lambda: [process[0] for process in server_processes(hub, "carol")] == [new_pid],
        30,
        message="carol's old server to end",
    )
    assert unrecorded_servers(hub) == {}

    hub.stop_server(carol, "carol")
    reliability.record(
        "faults",
        "Kept the sshd of the host running carol's cylc-ssh server stopped until the hub "
        "counted the server as stopped, then started sshd and carol's server again.",
        "The hub recorded the server it could not stop, stopped it at the next start, and "
        "left no server without a record.",
        outage_until_dropped_s=round(outage_s, 1),
    )


def test_stop_during_sshd_outage_keeps_record(ssh_hub, ssh_site, reliability):
    hub = ssh_hub["hub"]
    host = ssh_site.hosts[1]
    bob = spawn(hub, "bob")
    old_pid = recorded_states(hub)["bob"]["pid"]

    host.stop()
    try:
        started = time.monotonic()
        hub.stop_server(bob, "bob")
        stop_s = time.monotonic() - started
        # The stop could not reach the host, so the hub must still record the server.
        state = recorded_states(hub).get("bob", {})
        assert [entry["pid"] for entry in state.get("unstopped_servers", [])] == [old_pid]
        assert old_pid in [process[0] for process in server_processes(hub, "bob")]
        assert unrecorded_servers(hub) == {}
    finally:
        host.start()

    spawn(hub, "bob", {"user_options": {"host": host.entry}})
    new_pid = recorded_states(hub)["bob"]["pid"]
    wait_for(
        lambda: [process[0] for process in server_processes(hub, "bob")] == [new_pid],
        30,
        message="bob's old server to end",
    )
    assert "unstopped_servers" not in recorded_states(hub)["bob"]
    assert unrecorded_servers(hub) == {}

    hub.stop_server(bob, "bob")
    reliability.record(
        "faults",
        "Stopped bob's cylc-ssh server while the sshd of its host was stopped, then started "
        "sshd and bob's server again.",
        "The hub kept the server it could not stop in its record and stopped it at the next "
        "start, so no server ran without a hub record.",
        stop_during_outage_s=round(stop_s, 1),
    )


# --- 3. slurmctld stopped and started again --------------------------------------------


def test_slurmctld_outage_during_polls_keeps_server(slurm, slurm_hub, reliability):
    hub = slurm_hub["hub"]
    alice = spawn(hub, "alice", timeout=180)
    job_before = job_of(slurm, "alice")
    assert job_before[1] == "RUNNING"
    mark = LogMark(hub)

    slurm.stop_controller()
    stopped = time.monotonic()
    try:
        mark.wait("query of 1 job(s) failed (2 in a row)", 60)
        outage_s = time.monotonic() - stopped
        model = hub.server_model(alice, "alice")
        assert model is not None
        assert model["ready"]
    finally:
        slurm.start_controller()
    recovery_s = mark.wait("query succeeded again", 60)

    assert hub.server_model(alice, "alice")["ready"]
    assert job_of(slurm, "alice") == job_before
    wait_ui(hub, alice, "alice")
    assert "ended outside the hub" not in mark.text()
    assert unrecorded_jobs(hub, slurm) == {}

    hub.stop_server(alice, "alice")
    wait_for(lambda: job_of(slurm, "alice")[1] == "CANCELLED", 30, message="alice's job to end")
    reliability.record(
        "faults",
        "Stopped slurmctld while alice's cylc-slurm job ran until two queue queries had "
        "failed, then started it again.",
        "The hub kept the server while the job's state was unknown, the next query after the "
        "restart found the same job, and the UI answered through the hub.",
        outage_s=round(outage_s, 1),
        failed_queries=2,
        recovery_after_slurmctld_start_s=round(recovery_s, 1),
    )


def test_slurmctld_outage_during_submit_fails_clearly(slurm, slurm_hub, reliability):
    hub = slurm_hub["hub"]
    bob = hub.login("bob")

    slurm.stop_controller()
    try:
        requested = time.monotonic()
        message, _ = spawn_failure(hub, bob, "bob")
        fail_s = time.monotonic() - requested
        assert hub.server_model(bob, "bob") is None
    finally:
        slurm.start_controller()

    assert "sbatch" in message
    assert "Try again later" in message
    assert unrecorded_jobs(hub, slurm) == {}

    started = time.monotonic()
    spawn(hub, "bob", timeout=180)
    retry_s = time.monotonic() - started
    wait_ui(hub, bob, "bob")
    assert unrecorded_jobs(hub, slurm) == {}

    hub.stop_server(bob, "bob")
    wait_for(lambda: job_of(slurm, "bob")[1] == "CANCELLED", 30, message="bob's job to end")
    reliability.record(
        "faults",
        "Requested bob's cylc-slurm server while slurmctld was stopped, then started "
        "slurmctld and requested it again.",
        "The spawn failed with a message naming sbatch and what to do, no job was left "
        "without a hub record, and the retry started the server.",
        request_to_failure_s=round(fail_s, 1),
        retry_to_ready_s=round(retry_s, 1),
    )


def test_slurmctld_outage_while_job_starts(slurm, slurm_hub, reliability):
    hub = slurm_hub["hub"]
    carol = hub.login("carol")
    mark = LogMark(hub)

    requested = time.monotonic()
    spawned = Background(spawn, hub, "carol", None, 240)
    mark.wait("Submitted job", 60)
    slurm.stop_controller()
    try:
        mark.wait("query of 1 job(s) failed (1 in a row)", 60)
        model = hub.server_model(carol, "carol")
        assert model is not None
        assert not model["ready"]
    finally:
        slurm.start_controller()
    spawned.result(timeout=300)
    ready_s = time.monotonic() - requested

    assert "ended before" not in mark.text()
    wait_ui(hub, carol, "carol")
    assert unrecorded_jobs(hub, slurm) == {}
    assert job_of(slurm, "carol")[1] == "RUNNING"

    hub.stop_server(carol, "carol")
    wait_for(lambda: job_of(slurm, "carol")[1] == "CANCELLED", 30, message="carol's job to end")
    reliability.record(
        "faults",
        "Stopped slurmctld right after carol's cylc-slurm job was submitted, then started it "
        "again while the hub waited for the job.",
        "The spawn kept waiting with the job's state unknown instead of failing, the server "
        "became ready, and no job was left without a hub record.",
        request_to_ready_s=round(ready_s, 1),
    )


def test_stop_during_slurmctld_outage_keeps_job(slurm, slurm_hub, reliability):
    hub = slurm_hub["hub"]
    bob = spawn(hub, "bob", timeout=180)
    job_id, _ = job_of(slurm, "bob")

    slurm.stop_controller()
    try:
        started = time.monotonic()
        hub.stop_server(bob, "bob", timeout=120)
        stop_s = time.monotonic() - started
        # scancel could not reach slurmctld, so the hub must still record the job.
        state = recorded_states(hub).get("bob", {})
        assert [entry["job_id"] for entry in state.get("uncancelled_jobs", [])] == [job_id]
    finally:
        slurm.start_controller()
    assert job_of(slurm, "bob") == (job_id, "RUNNING")
    assert unrecorded_jobs(hub, slurm) == {}

    spawn(hub, "bob", timeout=180)
    wait_for(lambda: job_of(slurm, "bob")[0] != job_id, 30, message="bob's new job")
    assert slurm.queue()[job_id] == "CANCELLED"
    assert unrecorded_jobs(hub, slurm) == {}

    hub.stop_server(bob, "bob")
    reliability.record(
        "faults",
        "Stopped bob's cylc-slurm server while slurmctld was stopped, then started slurmctld "
        "and bob's server again.",
        "The hub kept the job it could not cancel in its record and cancelled it at the next "
        "start, so no job ran without a hub record.",
        stop_during_outage_s=round(stop_s, 1),
    )
