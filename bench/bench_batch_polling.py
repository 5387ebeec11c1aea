"""Count scheduler queries per poll interval: cylc-slurm against batchspawner's SlurmSpawner.

Run as any user from the repository root, after ``make test`` or
``scripts/setup.sh test`` installed batchspawner 1.3.0 into the venv::

    /opt/cylc-hub/venv/bin/python bench/bench_batch_polling.py

Both spawners run against the same stand-in ``squeue`` (a shell script
written to a temporary directory and put first on PATH), which reports
every job RUNNING and counts its calls. For each fleet size the benchmark
makes that many spawners with a running job and polls every spawner once
per interval, as JupyterHub's poll callback does, for ``ROUNDS`` intervals.
It then prints the calls of ``squeue`` per interval for each spawner and
their ratio. No Slurm and no hub are needed; nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from batchspawner import SlurmSpawner

from cylc_hub.spawners import batch_jobs
from cylc_hub.spawners.slurm import CylcSlurmSpawner

FLEET_SIZES = (10, 100, 1000)
ROUNDS = 3
INTERVAL = 1.0

# The stand-in handles both query forms: batchspawner's "squeue -h -j ID -o '%T %B'"
# and cylc-slurm's "squeue --jobs=A,B,... --format=%i|%T|%S|%N|%r".
STANDIN_SQUEUE = """#!/bin/sh
# Stand-in squeue for the benchmark, not Slurm: counts calls, reports every job RUNNING.
echo x >> {count_file}
ids=""
format=""
while [ $# -gt 0 ]; do
    case "$1" in
        -j) ids=$2; shift ;;
        --jobs=*) ids=${{1#--jobs=}} ;;
        -o) format=$2; shift ;;
        --format=*) format=${{1#--format=}} ;;
    esac
    shift
done
IFS=,
for id in $ids; do
    case "$format" in
        *"|"*) echo "$id|RUNNING|N/A|node1|None" ;;
        *) echo "RUNNING node1" ;;
    esac
done
"""

# Subprocesses started at once by the batchspawner side; only bounds file descriptors.
MAX_CONCURRENT_POLLS = 64


def fake_user(index):
    return SimpleNamespace(name=f"user{index}", url=f"/user/user{index}/", escaped_name=f"user{index}")


def fake_hub():
    return SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api/", base_url="/hub/")


def batchspawner_fleet(size):
    return [
        SlurmSpawner(
            user=fake_user(index), hub=fake_hub(), exec_prefix="", req_homedir="/tmp", req_keepvars="PATH", job_id=str(index + 1)
        )
        for index in range(size)
    ]


def cylc_fleet(size):
    spawners = []
    for index in range(size):
        spawner = CylcSlurmSpawner(user=fake_user(index), hub=fake_hub(), batch_poll_interval=INTERVAL)
        spawner.job_id = str(index + 1)
        spawners.append(spawner)
    return spawners


async def poll_rounds(spawners, count_file):
    """Poll every spawner once per interval for ROUNDS intervals; return squeue calls per interval."""
    limit = asyncio.Semaphore(MAX_CONCURRENT_POLLS)

    async def poll(spawner):
        async with limit:
            status = await spawner.poll()
        if status is not None:
            raise RuntimeError(f"{type(spawner).__name__} saw job {spawner.job_id} as stopped")

    before = count_calls(count_file)
    for _ in range(ROUNDS):
        started = time.monotonic()
        await asyncio.gather(*(poll(spawner) for spawner in spawners))
        await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
    calls = count_calls(count_file) - before

    for spawner in spawners:
        if isinstance(spawner, CylcSlurmSpawner):
            spawner._unwatch()
    # Each fleet starts with a fresh shared poller.
    batch_jobs._pollers.clear()
    return calls / ROUNDS


def count_calls(count_file):
    try:
        return count_file.stat().st_size // 2
    except FileNotFoundError:
        return 0


async def main():
    with tempfile.TemporaryDirectory(prefix="cylc-hub-bench-") as directory:
        count_file = Path(directory) / "calls"
        squeue = Path(directory) / "squeue"
        squeue.write_text(STANDIN_SQUEUE.format(count_file=count_file))
        squeue.chmod(0o755)
        os.environ["PATH"] = f"{directory}{os.pathsep}{os.environ['PATH']}"

        print(f"squeue calls per {INTERVAL:g} s poll interval, mean of {ROUNDS} intervals")
        print(f"{'servers':>8} {'batchspawner':>13} {'cylc-slurm':>11} {'ratio':>8}")
        for size in FLEET_SIZES:
            baseline = await poll_rounds(batchspawner_fleet(size), count_file)
            ours = await poll_rounds(cylc_fleet(size), count_file)
            ratio = baseline / ours if ours else float("inf")
            print(f"{size:>8} {baseline:>13.1f} {ours:>11.1f} {ratio:>7.0f}x", flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
