"""Job states and the shared poller: one scheduler query per interval for every job.

Each batch spawner reads its job's last known status from a shared
:class:`JobPoller` instead of querying the scheduler itself. The poller runs while at
least one job is watched and sends one query for all watched job ids per
interval, so the cost per interval does not grow with the number of servers.
A failed query marks every status unknown (never "done") and the next query
waits longer, doubling up to ``max_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from cylc_hub.spawners.transport.base import CommandError

log = logging.getLogger(__name__)

# Normalized states. Each scheduler maps its own state codes onto these.
PENDING = "pending"
RUNNING = "running"
DONE = "done"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class JobStatus:
    """Last reported state of one job, with the scheduler's own words for it."""

    state: str
    scheduler_state: str = ""
    reason: str = ""
    start_time: str = ""
    node: str = ""

    def describe(self, job_id):
        """Return one line for the spawn page, such as ``Job 12 is pending (Resources)``."""
        if self.state == UNKNOWN:
            return f"Job {job_id}: state unknown, {self.reason or 'waiting for the scheduler'}"
        text = f"Job {job_id} is {self.scheduler_state or self.state}"
        if self.reason:
            text += f" ({self.reason})"
        if self.start_time:
            text += f", estimated start {self.start_time}"
        if self.node and self.state == RUNNING:
            text += f" on {self.node}"
        return text


class QueryFailed(Exception):
    """Failure of a scheduler query: an error exit or output that cannot be parsed."""


class JobPoller:
    """Query the scheduler for all watched jobs of one login host, once per interval.

    ``scheduler`` supplies ``query_argv(job_ids)`` and
    ``parse_query(result, job_ids)``; ``transport`` runs the query as the
    hub's account on the login host; ``clock`` returns monotonic seconds.
    """

    def __init__(
        self,
        scheduler,
        transport,
        interval=10.0,
        max_interval=300.0,
        timeout=30.0,
        clock: Callable[[], float] = time.monotonic,
        name="",
        logger=None,
    ):
        self.scheduler = scheduler
        self.transport = transport
        self.interval = interval
        self.max_interval = max_interval
        self.timeout = timeout
        self.clock = clock
        self.name = name or type(scheduler).__name__
        self.log = logger or log
        self.query_count = 0
        self.failures = 0

        self._watched: dict[str, int] = {}
        self._statuses: dict[str, JobStatus] = {}
        # Start time of the last query that succeeded. A job submitted after it
        # cannot be missing from its output yet.
        self._last_success: Optional[float] = None
        # Job ids that the last successful query asked for. Only these can be
        # missing from its output: a job watched while it ran was not asked for.
        self._queried: frozenset[str] = frozenset()
        self._task: Optional[asyncio.Task] = None
        self._round = asyncio.Event()

    def watch(self, job_id):
        """Include ``job_id`` in every query until :meth:`unwatch`; start the loop if needed."""
        self._watched[job_id] = self._watched.get(job_id, 0) + 1
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())

    def unwatch(self, job_id):
        count = self._watched.get(job_id, 0) - 1
        if count > 0:
            self._watched[job_id] = count
            return
        self._watched.pop(job_id, None)
        self._statuses.pop(job_id, None)

    def status(self, job_id, submitted_at):
        """Return the job's last known status.

        ``submitted_at`` is the clock time just before the job was submitted,
        or ``None`` for a job adopted after a hub restart. A job is done when
        it is missing from a query that asked for it and started after its
        submission. Before such a query its state is unknown. While queries fail, the state is
        unknown and the last reason, start time and node are kept.
        """
        known = self._statuses.get(job_id)
        if self.failures:
            return replace(
                known or JobStatus(UNKNOWN),
                state=UNKNOWN,
                reason="the scheduler did not answer; retrying",
            )
        if known is not None:
            return known
        if job_id in self._queried and (submitted_at is None or self._last_success >= submitted_at):
            return JobStatus(DONE, reason="no longer in the queue")
        return JobStatus(UNKNOWN, reason="waiting for the first queue query")

    async def wait_for_round(self, timeout):
        """Wait until the next query finishes, or for ``timeout`` seconds."""
        event = self._round
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def query_once(self):
        """Query all watched jobs now; return whether the query succeeded."""
        job_ids = sorted(self._watched, key=_job_sort_key)
        if not job_ids:
            return True
        started = self.clock()
        self.query_count += 1
        argv = self.scheduler.query_argv(job_ids)
        try:
            result = await self.transport.run(argv, timeout=self.timeout)
            statuses = self.scheduler.parse_query(result, job_ids)
        except (CommandError, QueryFailed) as error:
            self.failures += 1
            self.log.warning(
                "%s: query of %d job(s) failed (%d in a row), states unknown: %s",
                self.name,
                len(job_ids),
                self.failures,
                error,
            )
            return False

        if self.failures:
            self.log.info("%s: query succeeded again after %d failure(s)", self.name, self.failures)
        self.failures = 0
        self._last_success = started
        self._queried = frozenset(job_ids)
        self._statuses = {job_id: statuses[job_id] for job_id in job_ids if job_id in statuses}
        return True

    def next_delay(self):
        """Return seconds until the next query: the interval, or a backoff with jitter."""
        if not self.failures:
            return self.interval
        backoff = min(self.max_interval, self.interval * 2**self.failures)
        return backoff * random.uniform(0.8, 1.0)

    async def _loop(self):
        while self._watched:
            try:
                await self.query_once()
            except Exception:
                # A parser bug must not stop polling for every other job.
                self.failures += 1
                self.log.exception("%s: query failed unexpectedly", self.name)
            finally:
                finished, self._round = self._round, asyncio.Event()
                finished.set()
            await asyncio.sleep(self.next_delay())


def _job_sort_key(job_id):
    head = job_id.split(".", 1)[0]
    return (int(head) if head.isdigit() else 0, job_id)


_pollers: dict[tuple, JobPoller] = {}


def shared_poller(key, create):
    """Return the hub-wide poller for ``key``, made by ``create()`` on first use."""
    poller = _pollers.get(key)
    if poller is None:
        poller = _pollers[key] = create()
    return poller
