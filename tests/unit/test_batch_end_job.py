"""A batch spawn that fails because its job left the queue cancels the job anyway."""

import asyncio
from unittest import mock

import pytest

from cylc_hub.spawners.batch import BatchSpawnError
from cylc_hub.spawners.batch_jobs import DONE, JobStatus
from cylc_hub.spawners.slurm import CylcSlurmSpawner
from cylc_hub.spawners.transport.base import CommandResult


class RecordingTransport:
    """Runs nothing; records each command and returns exit status 0."""

    def __init__(self):
        self.commands = []

    async def run(self, argv, *, input=None, timeout=60.0):
        self.commands.append(list(argv))
        return CommandResult(0, "", "")


class EndedPoller:
    """A poller whose every job has left the queue."""

    def status(self, job_id, submitted_at):
        return JobStatus(DONE, reason="no longer in the queue")

    def unwatch(self, job_id):
        pass


@pytest.fixture
def spawner():
    user = mock.Mock()
    user.name = "alice"
    transport = RecordingTransport()
    spawner = CylcSlurmSpawner(user=user, hub=mock.Mock(), transport_factory=lambda host, user: transport)
    spawner.transport_log = transport
    spawner.job_id = "42"
    spawner.submitted_at = 100.0
    return spawner


async def test_job_gone_before_port_cancelled(spawner):
    spawner._port_future = asyncio.get_running_loop().create_future()

    with mock.patch.object(type(spawner), "poller", EndedPoller()):
        with pytest.raises(BatchSpawnError, match="ended before its server started"):
            await spawner.wait_for_port()

    assert ["scancel", "42"] in [command[:2] for command in spawner.transport_log.commands]
    assert spawner.job_id == ""


async def test_job_gone_before_node_cancelled(spawner):
    with mock.patch.object(type(spawner), "poller", EndedPoller()):
        with pytest.raises(BatchSpawnError, match="ended right after reporting its port"):
            await spawner.wait_for_node()

    assert ["scancel", "42"] in [command[:2] for command in spawner.transport_log.commands]
    assert spawner.job_id == ""
