"""The shared job poller: one query per interval for every job, unknown on failure."""

import asyncio

import pytest

from cylc_hub.spawners.batch_jobs import DONE, PENDING, RUNNING, UNKNOWN, JobPoller, JobStatus, QueryFailed
from cylc_hub.spawners.transport.base import CommandError, CommandResult


class FakeScheduler:
    """Every watched job runs, except those in ``gone``; ``fail`` makes the query fail."""

    def __init__(self):
        self.gone = set()
        self.fail = False
        self.queried = []

    def query_argv(self, job_ids):
        self.queried.append(list(job_ids))
        return ["squeue", ",".join(job_ids)]

    def parse_query(self, result, job_ids):
        if self.fail:
            raise QueryFailed("controller down")
        return {job_id: JobStatus(RUNNING, "RUNNING") for job_id in job_ids if job_id not in self.gone}


class CountingTransport:
    def __init__(self):
        self.calls = 0
        self.error = None

    async def run(self, argv, *, input=None, timeout=60.0):
        self.calls += 1
        if self.error:
            raise self.error
        return CommandResult(0, "", "")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def poller():
    return JobPoller(FakeScheduler(), CountingTransport(), interval=0.05, max_interval=0.4, clock=Clock())


async def test_one_query_for_many_jobs(poller):
    for job_id in map(str, range(1, 501)):
        poller.watch(job_id)

    await poller.query_once()

    assert poller.transport.calls == 1
    assert poller.scheduler.queried[0][:3] == ["1", "2", "3"]
    assert len(poller.scheduler.queried[0]) == 500
    assert poller.status("250", 0).state == RUNNING
    poller._task.cancel()


async def test_loop_queries_once_per_interval(poller):
    for job_id in map(str, range(1, 101)):
        poller.watch(job_id)

    await asyncio.sleep(0.28)

    assert 4 <= poller.transport.calls <= 7
    poller._task.cancel()


async def test_failed_query_is_unknown_never_done(poller):
    poller.watch("1")
    await poller.query_once()
    poller.scheduler.fail = True
    poller.scheduler.gone.add("1")

    await poller.query_once()

    status = poller.status("1", 0)
    assert status.state == UNKNOWN
    assert status.scheduler_state == "RUNNING"
    assert "did not answer" in status.reason
    poller._task.cancel()


async def test_transport_error_is_unknown(poller):
    poller.watch("1")
    poller.transport.error = CommandError("ssh: host unreachable", "Try again")

    assert await poller.query_once() is False

    assert poller.status("1", 0).state == UNKNOWN
    poller._task.cancel()


async def test_backoff_doubles_up_to_max(poller):
    poller.failures = 1
    first = poller.next_delay()
    poller.failures = 2
    second = poller.next_delay()
    poller.failures = 10

    assert 0.08 <= first <= 0.1
    assert 0.16 <= second <= 0.2
    assert poller.next_delay() <= 0.4


async def test_missing_job_done_only_after_later_query(poller):
    poller.watch("1")
    poller.scheduler.gone.add("1")
    poller.clock.now = 100.0
    await poller.query_once()

    assert poller.status("1", submitted_at=150.0).state == UNKNOWN
    assert poller.status("1", submitted_at=50.0).state == DONE
    assert poller.status("1", submitted_at=None).state == DONE
    poller._task.cancel()


async def test_job_not_asked_for_is_not_done(poller):
    """A query that started after the submission but did not ask for the job proves nothing."""
    poller.watch("1")
    poller.clock.now = 100.0
    await poller.query_once()

    poller.watch("2")

    assert poller.status("2", submitted_at=50.0).state == UNKNOWN
    assert poller.status("2", submitted_at=None).state == UNKNOWN
    poller._task.cancel()


async def test_success_after_failure_clears_unknown(poller):
    poller.watch("1")
    poller.scheduler.fail = True
    await poller.query_once()
    poller.scheduler.fail = False

    await poller.query_once()

    assert poller.failures == 0
    assert poller.status("1", 0).state == RUNNING
    poller._task.cancel()


async def test_loop_stops_without_jobs(poller):
    poller.watch("1")
    poller.unwatch("1")

    await asyncio.sleep(0.12)

    assert poller._task.done()
    assert poller.transport.calls <= 1


def test_describe_queue_line():
    status = JobStatus(PENDING, "PENDING", "Resources", "2026-12-04 21:44:18")

    assert status.describe("12") == "Job 12 is PENDING (Resources), estimated start 2026-12-04 21:44:18"
