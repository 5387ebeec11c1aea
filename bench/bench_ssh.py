"""Benchmark cylc-ssh: spawn to ready against its floor, and SSH connections per poll sweep.

Run as root on a machine prepared by ``scripts/setup.sh test``::

    make bench-ssh        # or: /opt/cylc-hub/venv/bin/python bench/bench_ssh.py

It starts two sshd processes on 127.0.0.1 and 127.0.0.2 (tests/sshharness.py)
and prints two tables:

1. Spawn to ready: the hub's ``POST /users/alice/server`` until the hub
   reports the server ready, against the floor: one SSH connection opened by
   hand that runs the same ``cylc hubapp`` until it responds to HTTP. The ratio
   is spawn time over floor time (median of ``--rounds``).
2. Poll sweep: 100 server process groups (``sleep``) spread over 4 users and
   2 hosts, polled by 100 ``CylcSSHSpawner`` objects through the shared pool,
   against a baseline that opens one connection per poll, as an SSH spawner
   without a pool does. Counts the SSH connections opened during each sweep.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import types
from pathlib import Path

import asyncssh
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hubharness import USERS, free_port, start_hub, stop_hub  # noqa: E402
from sshharness import remove_site, start_site  # noqa: E402

from cylc_hub.spawners.ssh import CylcSSHSpawner  # noqa: E402
from cylc_hub.spawners.transport.ssh import shared_pool  # noqa: E402

SSH_CONFIG = ROOT / "tests" / "configs" / "ssh_config.py"
PASSWORD_FILE = Path("/var/lib/cylc-hub/test-password")
VENV_BIN = Path(sys.prefix) / "bin"


def wait_until(condition, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(interval)


def time_hub_spawn(hub, session):
    """Return seconds from the spawn request until the hub reports alice's server ready."""
    started = time.monotonic()
    response = hub.api(session, "POST", "/users/alice/server", json={"user_options": {}})
    assert response.status_code in (201, 202), response.text
    wait_until(lambda: (hub.server_model(session, "alice") or {}).get("ready"), 120)
    elapsed = time.monotonic() - started
    hub.stop_server(session, "alice")
    return elapsed


async def time_floor(site, token):
    """Return seconds to connect once and run ``cylc hubapp`` by hand until it responds to HTTP."""
    host = site.hosts[1]
    port = free_port_on(host.address)
    base = "/user/alice/"
    env = {
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
        "JUPYTERHUB_API_URL": os.environ["BENCH_HUB_API_URL"],
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_SERVICE_PREFIX": base,
        "JUPYTERHUB_SERVICE_URL": f"http://{host.address}:{port}{base}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{base}oauth_callback",
        "JUPYTERHUB_BASE_URL": "/",
    }
    # The environment arrives on stdin, as with the spawner, so the token stays out of ps.
    script = (
        f"export PATH={VENV_BIN}:$PATH\n"
        'while IFS= read -r line; do export "$line"; done\n'
        "echo $$\n"
        "exec cylc hubapp\n"
    )
    url = f"http://{host.address}:{port}{base}api"

    started = time.monotonic()
    connection = await asyncssh.connect(
        host.address,
        host.port,
        username="alice",
        client_keys=[str(site.client_key)],
        known_hosts=str(site.known_hosts),
        agent_path=None,
    )
    process = await connection.create_process(script)
    process.stdin.write("".join(f"{key}={value}\n" for key, value in env.items()))
    process.stdin.write_eof()
    pid = int((await process.stdout.readline()).strip())
    await asyncio.to_thread(wait_until, lambda: answers(url), 120)
    elapsed = time.monotonic() - started

    await connection.run(f"kill -TERM {pid}; sleep 1; kill -KILL {pid} 2>/dev/null", check=False)
    connection.close()
    return elapsed


def free_port_on(address):
    import socket

    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def answers(url):
    try:
        requests.get(url, timeout=2)
        return True
    except requests.ConnectionError:
        return False


def spawn_table(site, rounds):
    password = PASSWORD_FILE.read_text().strip()
    hub = start_hub(password, config=SSH_CONFIG, extra_env=site.env())
    try:
        api_port = next(
            line.split("=", 1)[1]
            for line in Path(f"/proc/{hub.process.pid}/environ").read_bytes().decode().split("\0")
            if line.startswith("CYLC_HUB_API_PORT=")
        )
        os.environ["BENCH_HUB_API_URL"] = f"http://127.0.0.1:{api_port}/hub/api"
        session = hub.login("alice")
        spawns = [time_hub_spawn(hub, session) for _ in range(rounds)]

        token = hub.api(session, "POST", "/users/alice/tokens", json={"note": "bench"}).json()
        floors = [asyncio.run(time_floor(site, token["token"])) for _ in range(rounds)]
        hub.api(session, "DELETE", f"/users/alice/tokens/{token['id']}")
    finally:
        stop_hub(hub)

    spawn, floor = statistics.median(spawns), statistics.median(floors)
    print(f"Spawn to ready over SSH ({rounds} rounds, median)")
    print(
        f"  cylc-ssh through the hub     {spawn:6.2f} s   (all: {', '.join(f'{s:.2f}' for s in spawns)})"
    )
    print(
        f"  by hand, one SSH connection  {floor:6.2f} s   (all: {', '.join(f'{s:.2f}' for s in floors)})"
    )
    print(f"  ratio                        {spawn / floor:6.2f}")


async def start_sleepers(site, count):
    """Start ``count`` process groups spread over users and hosts; return spawner states."""
    slots = [(user, host) for user in USERS for host in site.hosts]
    states = []
    per_slot = [count // len(slots) + (index < count % len(slots)) for index in range(len(slots))]
    for (user, host), number in zip(slots, per_slot):
        code = (
            "import subprocess\n"
            f"for _ in range({number}):\n"
            "    print(subprocess.Popen(['sleep', '900'], start_new_session=True,"
            " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)\n"
        )
        spawner = make_spawner(site, user)
        result = await spawner.transport_for(host.address, host.port).run(["python3", "-c", code])
        for line in result.stdout.split():
            states.append((user, {"host": host.address, "ssh_port": host.port, "pid": int(line)}))
    return states


def make_spawner(site, user, state=None):
    spawner = CylcSSHSpawner(
        user=types.SimpleNamespace(name=user, url=f"/user/{user}/"),
        orm_spawner=None,
        hub=None,
        ssh_keyfile=str(site.client_key),
        known_hosts=str(site.known_hosts),
    )
    if state:
        spawner.load_state(state)
    return spawner


async def baseline_poll(site, user, state, limit):
    """Poll one server the way a spawner without a pool does: a new connection per poll."""
    host = next(host for host in site.hosts if host.address == state["host"])
    async with limit:
        async with asyncssh.connect(
            host.address,
            host.port,
            username=user,
            client_keys=[str(site.client_key)],
            known_hosts=str(site.known_hosts),
            agent_path=None,
        ) as connection:
            result = await connection.run(f"kill -0 -{int(state['pid'])}", check=False)
            return None if result.exit_status == 0 else 1


async def poll_table(site, count):
    states = await start_sleepers(site, count)
    # The first sweep then starts from an empty pool, as after a hub restart.
    await shared_pool.close()
    spawners = [make_spawner(site, user, state) for user, state in states]
    try:
        rows = []
        for label in ("first sweep (pool empty)", "second sweep (pool warm)"):
            before = shared_pool.connections_opened
            started = time.monotonic()
            results = await asyncio.gather(*(spawner.poll() for spawner in spawners))
            elapsed = time.monotonic() - started
            assert results == [None] * len(spawners), results
            rows.append((f"cylc-ssh, {label}", shared_pool.connections_opened - before, elapsed))

        # sshd drops unauthenticated connections beyond MaxStartups (10 by default).
        limit = asyncio.Semaphore(8)
        started = time.monotonic()
        results = await asyncio.gather(
            *(baseline_poll(site, user, state, limit) for user, state in states)
        )
        elapsed = time.monotonic() - started
        assert results == [None] * len(states), results
        rows.append(("one connection per poll", len(states), elapsed))
    finally:
        for user, state in states:
            transport = make_spawner(site, user).transport_for(state["host"], state["ssh_port"])
            await transport.run(["kill", "-KILL", f"-{state['pid']}"])
        await shared_pool.close()

    hosts = len(site.hosts)
    print(f"\nPoll sweep of {len(states)} servers on {hosts} hosts ({len(USERS)} users)")
    print(f"  {'':38} {'connections opened':>18} {'sweep time':>11}")
    for label, connections, elapsed in rows:
        print(f"  {label:38} {connections:18d} {elapsed:9.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="spawns and floor runs to time (default 3)"
    )
    parser.add_argument(
        "--servers", type=int, default=100, help="servers in the poll sweep (default 100)"
    )
    arguments = parser.parse_args()

    if os.geteuid() != 0:
        sys.exit("bench_ssh: run as root; it starts sshd and acts as the test users")
    site = start_site(loads=("5.0", "0.1"))
    try:
        spawn_table(site, arguments.rounds)
        asyncio.run(poll_table(site, arguments.servers))
    finally:
        remove_site(site)
    print(f"\nMachine: {os.cpu_count()} CPUs; hub, proxy, sshd and servers all on this host.")


if __name__ == "__main__":
    main()
