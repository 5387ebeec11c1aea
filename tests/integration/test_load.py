"""Many users spawning at once through the real hub, with cylc-local and with cylc-slurm.

Each test logs its users in, requests every server at the same moment and
follows each spawn to ready or failed, while a probe thread keeps reading
the hub API and the cylc-access list. The figures are recorded, never
asserted: what must hold is that every spawn ends with ready or a message,
that the probe's requests all succeed, and that nothing is left running.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from hubharness import ROOT, USERS, start_hub, stop_hub, wait_for
from loadharness import (
    LatencyProbe,
    MemorySampler,
    create_users,
    percentile,
    processes_of_users,
    spawn_and_wait,
    start_sized_slurm,
    write_group_policy,
)
from slurmharness import remove_slurm

pytestmark = pytest.mark.hub

CONFIG = ROOT / "tests" / "configs" / "load_config.py"
LOCAL_USERS = [f"load{number:02d}" for number in range(1, 51)]
SLURM_USERS = LOCAL_USERS[:20]
SERVICE = "/services/cylc-access"
# A server that has not started this long after its request counts as hung.
SPAWN_DEADLINE_S = 300
# Seconds the probe runs before the spawns, for figures of the idle hub.
IDLE_PROBE_S = 5
# The sized node: room for the 20 jobs, which request one CPU each and no memory.
SLURM_CPUS = 24
SLURM_MEMORY_MB = 24000


@pytest.fixture(scope="module")
def load_users(password):
    create_users(LOCAL_USERS, password)
    return LOCAL_USERS


@pytest.fixture(scope="module")
def load_policy(tmp_path_factory):
    return write_group_policy(tmp_path_factory.mktemp("load") / "policy.toml", "load", LOCAL_USERS)


def allowed_users():
    return ",".join([*USERS, *LOCAL_USERS])


@pytest.fixture(scope="module")
def local_hub(password, load_users, load_policy):
    hub = start_hub(password, load_policy, CONFIG, {"CYLC_HUB_USERS": allowed_users()})
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def sized_slurm():
    cluster = start_sized_slurm(SLURM_CPUS, SLURM_MEMORY_MB)
    yield cluster
    remove_slurm(cluster)


@pytest.fixture(scope="module")
def slurm_hub(password, load_users, load_policy, sized_slurm):
    extra_env = {
        "CYLC_HUB_USERS": allowed_users(),
        "CYLC_HUB_LOAD_SPAWNER": "cylc-slurm",
        "SLURM_CONF": str(sized_slurm.conf),
    }
    hub = start_hub(password, load_policy, CONFIG, extra_env)
    yield hub
    stop_hub(hub)


def log_in_all(hub, users):
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(users, pool.map(hub.login, users)))


def spawn_all(hub, sessions):
    """Request every server at the same moment, and return the results and the seconds until the last spawn ended."""
    barrier = Barrier(len(sessions))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        futures = [
            pool.submit(spawn_and_wait, hub, session, user, SPAWN_DEADLINE_S, barrier)
            for user, session in sessions.items()
        ]
        results = [future.result() for future in futures]
    return results, round(time.monotonic() - started, 1)


def stop_all(hub, sessions):
    """Stop every server at once, and return the seconds until the hub shows them all stopped."""
    for session in sessions.values():
        # Drop connections that the proxy may have closed while they were idle.
        session.close()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        list(pool.map(lambda user: hub.stop_server(sessions[user], user, timeout=120), sessions))
    return round(time.monotonic() - started, 1)


def probe_for(hub, session):
    """A latency probe of the hub API, the list API and the list page, logged in as ``session``."""
    # The first visit goes through the service's OAuth redirects and sets its cookie.
    assert hub.open(session, f"{SERVICE}/").status_code == 200
    targets = {
        "hub_api": f"/hub/api/users/{session.hub_user}",
        "viewable": f"{SERVICE}/api/viewable",
        "list_page": f"{SERVICE}/",
    }
    return LatencyProbe(hub, session, targets)


def probe_idle(probe):
    """Run the started ``probe`` on the idle hub, return its p95 figures, and start it afresh."""
    time.sleep(IDLE_PROBE_S)
    assert not probe.failures, probe.failures[:10]
    figures = {f"idle_{name}_p95_ms": probe.p95_ms(name) for name in probe.targets}
    probe.reset()
    return figures


def load_p95(probe):
    return {f"{name}_p95_ms": probe.p95_ms(name) for name in probe.targets}


def check_outcomes(results):
    """Assert that each spawn ended ready or failed with a message, never hung or with a 5xx."""
    for result in results:
        assert result.status < 500, result
        assert result.outcome not in ("timed out", "no response"), result
        if result.outcome != "ready":
            assert result.message.strip(), result
    assert any(result.outcome == "ready" for result in results), results


def spawn_figures(results, elapsed_s):
    ready = [result.seconds for result in results if result.outcome == "ready"]
    return {
        "servers_ready": len(ready),
        "servers_failed_with_message": len(results) - len(ready),
        "all_ended_s": elapsed_s,
        "median_spawn_to_ready_s": percentile(ready, 0.5),
        "max_spawn_to_ready_s": max(ready, default=None),
    }


def viewable_owners(hub, session):
    response = session.get(f"{hub.url}{SERVICE}/api/viewable", timeout=60)
    response.raise_for_status()
    return {server["owner"]: server["ready"] for server in response.json()["servers"]}


def holds_within(condition, timeout):
    """Return whether ``condition()`` became true within ``timeout`` seconds."""
    try:
        wait_for(condition, timeout, interval=1)
    except TimeoutError:
        return False
    return True


def test_fifty_local_spawns_at_once(local_hub, reliability):
    hub = local_hub
    sessions = log_in_all(hub, LOCAL_USERS)
    probe = probe_for(hub, hub.login(LOCAL_USERS[0]))
    memory = MemorySampler(LOCAL_USERS, hub.process.pid)

    probe.start()
    memory.start()
    try:
        idle = probe_idle(probe)
        results, elapsed_s = spawn_all(hub, sessions)
    finally:
        probe.stop()
        memory.stop()
    print(*results, sep="\n")

    # The list shows every other load user's server as it is now.
    ready = {result.user for result in results if result.outcome == "ready"}
    expected = {user: user in ready for user in LOCAL_USERS[1:]}
    list_matches = holds_within(lambda: viewable_owners(hub, probe.session) == expected, 30)

    # The servers stop before any assertion, so that a failure leaves nothing running.
    stop_s = stop_all(hub, sessions)
    processes_ended = holds_within(lambda: not processes_of_users(LOCAL_USERS), 30)
    hub_responds = requests.get(f"{hub.url}/hub/api/", timeout=30).ok

    figures = {
        **spawn_figures(results, elapsed_s),
        **load_p95(probe),
        **idle,
        "probe_requests": sum(len(values) for values in probe.latencies.values()),
        "peak_servers_rss_mib": round(memory.peak_users_mib),
        "peak_hub_proxy_service_rss_mib": round(memory.peak_hub_mib),
        "stop_all_s": stop_s,
    }
    print(figures)
    reliability.record(
        "load",
        "50 users requested their cylc-local servers at the same moment through the hub's REST "
        "API while a probe read the hub API, api/viewable and the list page.",
        "Every spawn ended ready or failed with a message, every probe request succeeded, the "
        "list showed each server's state, and no process of the 50 users was left after the stop.",
        **figures,
    )

    check_outcomes(results)
    assert not probe.failures, probe.failures[:10]
    assert list_matches, viewable_owners(hub, probe.session)
    assert processes_ended, processes_of_users(LOCAL_USERS)
    assert hub_responds


def test_twenty_slurm_spawns_at_once(slurm_hub, sized_slurm, reliability):
    hub = slurm_hub
    sessions = log_in_all(hub, SLURM_USERS)
    probe = probe_for(hub, hub.login(SLURM_USERS[0]))

    probe.start()
    try:
        idle = probe_idle(probe)
        results, elapsed_s = spawn_all(hub, sessions)
    finally:
        probe.stop()
    print(*results, sep="\n")

    # The jobs end before any assertion, so that a failure leaves nothing queued.
    stop_s = stop_all(hub, sessions)
    jobs_ended = holds_within(lambda: not live_jobs(sized_slurm), 60)
    processes_ended = holds_within(lambda: not processes_of_users(SLURM_USERS), 30)
    hub_responds = requests.get(f"{hub.url}/hub/api/", timeout=30).ok

    figures = {
        **spawn_figures(results, elapsed_s),
        "slurm_node": f"own node, {SLURM_CPUS} CPUs declared",
        **load_p95(probe),
        **idle,
        "probe_requests": sum(len(values) for values in probe.latencies.values()),
        "stop_all_s": stop_s,
    }
    print(figures)
    reliability.record(
        "load",
        "20 users requested their cylc-slurm servers at the same moment, on a one-node Slurm "
        "sized for 20 jobs, while a probe read the hub API, api/viewable and the list page.",
        "Every spawn ended ready or failed with a message, every probe request succeeded, and "
        "no job or process of the 20 users was left after the stop.",
        **figures,
    )

    assert jobs_ended, live_jobs(sized_slurm)
    assert processes_ended, processes_of_users(SLURM_USERS)
    assert hub_responds
    assert not probe.failures, probe.failures[:10]
    check_outcomes(results)


def live_jobs(slurm):
    """Return the jobs that are still queued or running, as ``{job_id: state}``."""
    ended = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY"}
    return {job: state for job, state in slurm.queue().items() if state not in ended}
