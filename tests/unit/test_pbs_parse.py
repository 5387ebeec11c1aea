"""PBS output parsing, on output printed by the stand-in commands in tests/standins/pbs."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from cylc_hub.spawners.batch_jobs import DONE, PENDING, RUNNING, QueryFailed
from cylc_hub.spawners.pbs import PBSScheduler
from cylc_hub.spawners.transport.base import CommandResult

STANDINS = Path(__file__).resolve().parents[1] / "standins" / "pbs"

QUEUED_JOB = {
    "id": "1.standin-server",
    "name": "cylc-hub-alice",
    "queue": "workq",
    "owner": "alice",
    "output": "out",
    "state": "Q",
    "pid": 0,
}


@pytest.fixture
def standin(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    conf = tmp_path / "pbs.conf"
    conf.write_text(f"PBS_STANDIN_SPOOL={spool}\nPBS_STANDIN_QUEUES=workq\n")

    def run(*argv, input=None):
        completed = subprocess.run(
            [str(STANDINS / argv[0]), *argv[1:]],
            env=dict(os.environ, PBS_CONF_FILE=str(conf)),
            input=input,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)

    run.spool = spool
    return run


def write_job(spool, **changes):
    job = dict(QUEUED_JOB, **changes)
    (spool / f"{job['id'].split('.')[0]}.json").write_text(json.dumps(job))


@pytest.mark.parametrize(
    "stdout, job_id",
    [("1234.pbs01\n", "1234.pbs01"), ("1234\n", "1234"), ("note: site banner\n77.server.example\n", "77.server.example")],
)
def test_job_id_parsed(stdout, job_id):
    assert PBSScheduler().parse_job_id(stdout) == job_id


def test_queued_running_finished_parsed(standin):
    write_job(standin.spool)
    write_job(standin.spool, id="2.standin-server", state="R")
    write_job(standin.spool, id="3.standin-server", state="F", exit_status=0)
    scheduler = PBSScheduler()
    ids = ["1.standin-server", "2.standin-server", "3.standin-server"]

    result = standin(*scheduler.query_argv(ids))
    statuses = scheduler.parse_query(result, ids)

    assert result.exit_status == 0
    assert statuses["1.standin-server"].state == PENDING
    assert statuses["1.standin-server"].reason.startswith("Not Running: Insufficient")
    assert statuses["1.standin-server"].start_time == "Fri Dec  4 23:00:00 2026"
    assert statuses["2.standin-server"].state == RUNNING
    assert statuses["2.standin-server"].node == "localhost"
    assert statuses["3.standin-server"].state == DONE


def test_unknown_job_id_means_gone(standin):
    write_job(standin.spool)
    scheduler = PBSScheduler()
    ids = ["1.standin-server", "9.standin-server"]

    result = standin(*scheduler.query_argv(ids))
    statuses = scheduler.parse_query(result, ids)

    assert result.exit_status == 153
    assert "9.standin-server" not in statuses
    assert statuses["1.standin-server"].state == PENDING


def test_server_down_is_failure(standin):
    (standin.spool / "down").touch()
    scheduler = PBSScheduler()

    result = standin(*scheduler.query_argv(["1.standin-server"]))

    with pytest.raises(QueryFailed, match="cannot connect"):
        scheduler.parse_query(result, ["1.standin-server"])


def test_invalid_json_is_failure():
    with pytest.raises(QueryFailed, match="invalid JSON"):
        PBSScheduler().parse_query(CommandResult(0, "{not json", ""), ["1"])


def test_rejected_queue_message(standin):
    (standin.spool / "counter").touch()

    result = standin("qsub", input="#!/bin/bash\n#PBS -q gone\ntrue\n")

    assert result.exit_status == 170
    assert result.stderr.strip() == "qsub: Unknown queue"
