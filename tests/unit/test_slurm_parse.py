"""Slurm output parsing: sbatch job ids and squeue states, from Slurm 22.05's real output."""

import pytest

from cylc_hub.spawners.batch_jobs import DONE, PENDING, RUNNING, UNKNOWN, QueryFailed
from cylc_hub.spawners.slurm import SlurmScheduler
from cylc_hub.spawners.transport.base import CommandResult


@pytest.mark.parametrize(
    "stdout, job_id",
    [
        ("1234\n", "1234"),
        ("1234;cluster2\n", "1234"),
        ("Submitted to site plugin: ok\n1234\n", "1234"),
        ("1234\nsbatch: note: your job uses the default account\n", "1234"),
        ("  99;c-1  \n", "99"),
    ],
)
def test_job_id_parsed(stdout, job_id):
    assert SlurmScheduler().parse_job_id(stdout) == job_id


@pytest.mark.parametrize("stdout", ["", "Submitted batch job\n", "12a\n", "1234;bad cluster\n"])
def test_job_id_missing_rejected(stdout):
    with pytest.raises(ValueError, match="no job id"):
        SlurmScheduler().parse_job_id(stdout)


def test_cluster_reaches_every_command():
    scheduler = SlurmScheduler("cl2")

    assert scheduler.submit_argv() == ["sbatch", "--parsable", "--clusters=cl2"]
    assert "--clusters=cl2" in scheduler.query_argv(["1"])
    assert scheduler.cancel_argv("7") == ["scancel", "--clusters=cl2", "7"]


def test_query_covers_all_jobs_in_one_command():
    argv = SlurmScheduler().query_argv(["3", "1", "2"])

    assert argv[0] == "squeue"
    assert "--jobs=3,1,2" in argv
    assert "--states=all" in argv


def test_query_output_parsed():
    stdout = (
        "2|PENDING|2026-12-04T21:44:18||Resources\n"
        "1|RUNNING|2026-12-04T20:44:18|vm|None\n"
        "3|CANCELLED|2026-12-04T20:40:00|vm|None\n"
        "4|PENDING|N/A||Priority\n"
    )

    statuses = SlurmScheduler().parse_query(CommandResult(0, stdout, ""), ["1", "2", "3", "4", "5"])

    assert statuses["1"].state == RUNNING
    assert statuses["1"].node == "vm"
    assert statuses["1"].reason == ""
    assert statuses["2"].state == PENDING
    assert statuses["2"].reason == "Resources"
    assert statuses["2"].start_time == "2026-12-04 21:44:18"
    assert statuses["3"].state == DONE
    assert statuses["4"].start_time == ""
    assert "5" not in statuses


def test_multi_cluster_header_skipped():
    stdout = "CLUSTER: cl2\n8|RUNNING|2026-12-04T20:44:18|n1,n2|None\n"

    statuses = SlurmScheduler("cl2").parse_query(CommandResult(0, stdout, ""), ["8"])

    assert list(statuses) == ["8"]
    assert statuses["8"].node == "n1"


def test_reason_with_separator_kept():
    stdout = "5|PENDING|N/A||ReqNodeNotAvail, UnavailableNodes:n1|n2\n"

    statuses = SlurmScheduler().parse_query(CommandResult(0, stdout, ""), ["5"])

    assert statuses["5"].reason == "ReqNodeNotAvail, UnavailableNodes:n1|n2"


def test_unknown_state_is_unknown():
    stdout = "6|SOMETHING_NEW|N/A||None\n"

    statuses = SlurmScheduler().parse_query(CommandResult(0, stdout, ""), ["6"])

    assert statuses["6"].state == UNKNOWN


def test_invalid_job_id_means_gone():
    result = CommandResult(1, "", "slurm_load_jobs error: Invalid job id specified\n")

    assert SlurmScheduler().parse_query(result, ["9"]) == {}


def test_unreachable_controller_is_failure():
    result = CommandResult(
        1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
    )

    with pytest.raises(QueryFailed, match="Unable to contact"):
        SlurmScheduler().parse_query(result, ["9"])
