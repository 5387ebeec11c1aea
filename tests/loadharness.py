"""Helpers for the load and hostile-input tests: many users, latency probes, memory samples.

Everything here drives the real hub from outside, as browsers and batch
jobs do. Nothing replaces a hub component.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

import slurmharness
from hubharness import ROOT


def create_users(names, password):
    """Create the OS users ``names`` (or set their password) with scripts/users.sh."""
    subprocess.run(
        [str(ROOT / "scripts" / "users.sh"), *names],
        input=f"{password}\n",
        text=True,
        check=True,
        timeout=600,
    )


def write_group_policy(path, group, members):
    """Write a policy in which every member of ``group`` may read every other member's UI."""
    quoted = ", ".join(json.dumps(name) for name in members)
    path.write_text(
        f"[groups]\n{group} = [{quoted}]\n\n"
        "[[rules]]\n"
        f'owners = ["group:{group}"]\n'
        f'viewers = ["group:{group}"]\n'
        'default = ["READ"]\n'
    )
    return path


def xsrf_headers(session):
    return {"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""}


def percentile(values, fraction):
    """Return the nearest-rank percentile of ``values`` (``fraction`` 0.95 for p95), or None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class SpawnResult:
    """How one user's spawn request ended."""

    user: str
    status: int = 0
    outcome: str = "not started"
    message: str = ""
    seconds: float = 0.0


def spawn_and_wait(hub, session, user, timeout, barrier=None):
    """Request ``user``'s default server and follow its progress stream to ready or failed.

    ``outcome`` is "ready", "failed" (with the hub's message), "rejected"
    (a 4xx or 5xx on the request itself), "no response" or "timed out".
    ``seconds`` counts from the request to the outcome.
    """
    result = SpawnResult(user)

    # configurable-http-proxy closes connections idle for 5 s, and requests
    # would send the POST on such a closed connection, so each spawn connects anew.
    session.close()
    if barrier is not None:
        barrier.wait(timeout=120)
    started = time.monotonic()

    try:
        response = hub.api(session, "POST", f"/users/{user}/server")
    except requests.RequestException as error:
        result.outcome, result.message = "no response", f"the spawn request failed: {error}"
        return result
    result.status = response.status_code
    if response.status_code >= 400:
        result.outcome, result.message = "rejected", _error_message(response)
    elif response.status_code == 201:
        result.outcome = "ready"
    else:
        result.outcome, result.message = _follow_progress(hub, session, user, started + timeout)

    result.seconds = round(time.monotonic() - started, 2)
    return result


def _error_message(response):
    try:
        return str(response.json().get("message", ""))
    except ValueError:
        return response.text[:500]


def _follow_progress(hub, session, user, deadline):
    """Read the spawn progress events until one is ready or failed, and return (outcome, message)."""
    url = f"{hub.url}/hub/api/users/{user}/server/progress"
    while time.monotonic() < deadline:
        try:
            with session.get(url, headers=xsrf_headers(session), stream=True, timeout=(30, 30)) as response:
                if response.status_code == 400:
                    # The spawn ended before the stream opened and left no failure to show.
                    model = hub.server_model(session, user)
                    return ("ready", "") if model and model["ready"] else ("failed", _error_message(response))
                for line in response.iter_lines(decode_unicode=True):
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        if event.get("ready"):
                            return "ready", event.get("message", "")
                        if event.get("failed"):
                            return "failed", event.get("message", "")
                    if time.monotonic() > deadline:
                        break
        except requests.RequestException:
            # A stream cut by a busy proxy is opened again until the deadline.
            time.sleep(1)
    return "timed out", f"no ready or failed event before the deadline for {user}"


@dataclass
class LatencyProbe:
    """A thread that GETs each of ``targets`` in turn and keeps each latency and failure.

    ``targets`` maps a name to a URL path on the hub, requested with ``session``.
    """

    hub: object
    session: requests.Session
    targets: dict
    pause: float = 0.1
    latencies: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self.latencies = {name: [] for name in self.targets}

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(120)

    def reset(self):
        """Forget the latencies and failures so far, such as those measured before the load."""
        self.latencies = {name: [] for name in self.targets}
        self.failures = []

    def p95_ms(self, name):
        value = percentile(self.latencies[name], 0.95)
        return None if value is None else round(value * 1000, 1)

    def _run(self):
        while not self._stop.is_set():
            for name, path in self.targets.items():
                self._get(name, path)
                self._stop.wait(self.pause)

    def _get(self, name, path):
        started = time.monotonic()
        try:
            response = self.session.get(
                f"{self.hub.url}{path}", headers=xsrf_headers(self.session), timeout=60
            )
        except requests.RequestException as error:
            self.failures.append((name, f"{type(error).__name__}: {error}"))
            return
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            self.failures.append((name, f"HTTP {response.status_code}: {response.text[:200]}"))
            return
        self.latencies[name].append(elapsed)


def _process_facts(pid):
    """Return (uid, session id, resident MiB) of a process, or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    facts = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = int(facts["Uid"].split()[0])
    rss_kib = int(facts.get("VmRSS", "0 kB").split()[0])
    # The command name in brackets may contain spaces, so fields count from its end.
    session_id = int(stat.rsplit(")", 1)[1].split()[3])
    return uid, session_id, rss_kib / 1024


class MemorySampler:
    """A thread that sums the resident memory of the users' processes and of the hub's, every second.

    The hub's share is every root process in the hub's session: the hub,
    configurable-http-proxy and cylc-access.
    """

    def __init__(self, users, hub_pid, interval=1.0):
        self.uids = {pwd.getpwnam(name).pw_uid for name in users}
        self.hub_pid = hub_pid
        self.interval = interval
        self.peak_users_mib = 0.0
        self.peak_hub_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        users_mib = hub_mib = 0.0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            facts = _process_facts(pid)
            if facts is None:
                continue
            uid, session_id, rss_mib = facts
            if uid in self.uids:
                users_mib += rss_mib
            elif uid == 0 and session_id == self.hub_pid:
                hub_mib += rss_mib
        self.peak_users_mib = max(self.peak_users_mib, users_mib)
        self.peak_hub_mib = max(self.peak_hub_mib, hub_mib)


def processes_of_users(names):
    """Return ``{user: [command line, ...]}`` for each of ``names`` that has a process."""
    output = subprocess.run(
        ["ps", "-o", "user:32=,args=", "-u", ",".join(names)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    left = {}
    for line in output.splitlines():
        user, _, args = line.strip().partition(" ")
        left.setdefault(user, []).append(args.strip())
    return left


def server_token_of(user):
    """Return the hub API token in the environment of ``user``'s UI server, read from /proc."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        environ = dict(
            item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
        )
        if environ.get("JUPYTERHUB_USER") == user and environ.get("JUPYTERHUB_API_TOKEN"):
            return environ["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no process of {user} has a server token in its environment")


def start_sized_slurm(cpus, memory_mb):
    """Start slurmharness's one-node cluster with a node of ``cpus`` CPUs and ``memory_mb`` MiB.

    slurmd runs with ``SlurmdParameters=config_overrides``, so the node may
    declare more CPUs and memory than this machine has.
    """
    template = slurmharness.SLURM_CONF
    sized = template.replace("CPUs=1 RealMemory=1000", f"CPUs={cpus} RealMemory={memory_mb}")
    if sized == template:
        raise RuntimeError("slurmharness.SLURM_CONF no longer declares CPUs=1 RealMemory=1000")

    slurmharness.SLURM_CONF = sized
    try:
        return slurmharness.start_slurm()
    finally:
        slurmharness.SLURM_CONF = template
