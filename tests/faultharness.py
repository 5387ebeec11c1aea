"""Helpers of the spawner fault tests: what the hub records, orphans, log marks and timing.

A server is *recorded* when the hub's database stores its process group
(``pid`` of local and SSH spawners, ``unstopped_servers`` of cylc-ssh) or
its batch job (``job_id``, ``uncancelled_jobs``) in the spawner's state. An *orphan* is a UI server process that talks to the hub
under test, or a job that is still queued or running on the test cluster,
that no record names.
"""

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

from hubharness import ROOT, USERS, wait_for
from sshharness import server_processes

# squeue states of a job that still holds, or waits for, a node.
ACTIVE_JOB_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"}


def write_local_config(directory):
    """Write a test config: the repository's config with servers that outlive the hub."""
    path = Path(directory) / "local_restart_config.py"
    path.write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(ROOT / 'jupyterhub_config.py')!r})  # noqa: F821\n"
        "# Servers outlive the hub, so that a restarted hub adopts them.\n"
        "c.JupyterHub.cleanup_servers = False\n"
        "c.Spawner.poll_interval = 5\n"
    )
    return path


def recorded_states(hub):
    """Return ``{user: state}`` of every spawner whose state the hub's database stores."""
    database = hub.state_dir / "hub" / "jupyterhub.sqlite"
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT users.name, spawners.state FROM spawners "
            "JOIN users ON users.id = spawners.user_id"
        ).fetchall()
    finally:
        connection.close()
    states = {}
    for user, text in rows:
        state = json.loads(text) if text else {}
        if state:
            states[user] = state
    return states


def unrecorded_servers(hub, users=USERS):
    """Return ``{user: [pid, ...]}`` of UI server process groups of ``hub`` that it does not record."""
    states = recorded_states(hub)
    found = {}
    for user in users:
        state = states.get(user, {})
        # cylc-ssh keeps the servers it could not stop, to stop them at the next start.
        recorded = {state.get("pid")} | {entry["pid"] for entry in state.get("unstopped_servers", [])}
        pids = [pid for pid, _, _ in server_processes(hub, user) if pid not in recorded]
        if pids:
            found[user] = pids
    return found


def stop_leftover_servers(hub, users=USERS, grace=5):
    """Stop, by process group, every UI server of ``hub`` still running; return their PIDs.

    A failed test may leave a server that the hub no longer stops: with
    cleanup_servers off, or recorded only as one to stop at the next start.
    """
    pgids = [pgid for user in users for _, pgid, _ in server_processes(hub, user)]
    for pgid in pgids:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in pgids):
        time.sleep(0.2)
    for pgid in pgids:
        _signal_group(pgid, signal.SIGKILL)
    return pgids


def _signal_group(pgid, number):
    try:
        os.killpg(pgid, number)
    except ProcessLookupError:
        pass


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def unrecorded_jobs(hub, slurm):
    """Return ``{job_id: state}`` of queued or running jobs on ``slurm`` that ``hub`` does not record."""
    recorded = set()
    for state in recorded_states(hub).values():
        recorded.add(state.get("job_id"))
        # The batch spawners keep the jobs they could not cancel, to cancel them at the next start.
        recorded.update(entry["job_id"] for entry in state.get("uncancelled_jobs", []))
    return {
        job_id: state
        for job_id, state in slurm.queue().items()
        if state in ACTIVE_JOB_STATES and job_id not in recorded
    }


class LogMark:
    """The hub log from a point on, so that a check ignores what earlier tests logged."""

    def __init__(self, hub):
        self.hub = hub
        self.offset = len(hub.log_text())

    def text(self):
        return self.hub.log_text()[self.offset :]

    def count(self, needle):
        return self.text().count(needle)

    def wait(self, needle, timeout, count=1):
        """Wait until ``needle`` appears ``count`` times after the mark; return the seconds waited."""
        started = time.monotonic()
        wait_for(
            lambda: self.count(needle) >= count,
            timeout,
            message=f"{needle!r} in the hub log:\n{self.hub.log_tail(30)}",
        )
        return time.monotonic() - started


class Background:
    """Run ``function(*args)`` in a thread; ``result()`` joins it and returns or re-raises."""

    def __init__(self, function, *args):
        self._value = None
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
        self._thread.start()

    def _run(self, function, args):
        try:
            self._value = function(*args)
        except BaseException as error:  # re-raised in the test's thread
            self._error = error

    def result(self, timeout):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the background call did not return within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


def wait_ui(hub, session, user, timeout=60):
    """Wait until ``/user/USER/cylc/`` responds with 200 through the proxy; return the seconds waited."""
    started = time.monotonic()

    def responds():
        try:
            return hub.open(session, f"/user/{user}/cylc/").status_code == 200
        except OSError:
            return False

    wait_for(responds, timeout, interval=0.5, message=f"{user}'s Cylc UI through the hub")
    return time.monotonic() - started
