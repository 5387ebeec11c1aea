"""Which transport a batch spawner uses, and how scheduler variables reach remote commands."""

import asyncio
from types import SimpleNamespace

import pytest
from traitlets import TraitError

from cylc_hub.spawners.batch import BatchSpawnError, EnvironmentTransport
from cylc_hub.spawners.slurm import CylcSlurmSpawner
from cylc_hub.spawners.transport.base import CommandResult
from cylc_hub.spawners.transport.local import LocalTransport
from cylc_hub.spawners.transport.ssh import SSHTransport


def make_spawner(**config):
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice")
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api/", base_url="/hub/")
    return CylcSlurmSpawner(user=user, hub=hub, **config)


class Recorder:
    def __init__(self):
        self.argv = None

    async def run(self, argv, *, input=None, timeout=60.0):
        self.argv = argv
        return CommandResult(0, "", "")


def test_local_without_submit_host():
    spawner = make_spawner(scheduler_environment={"SLURM_CONF": "/etc/site/slurm.conf"})

    transport = spawner.transport("alice")

    assert isinstance(transport, LocalTransport)
    assert transport.user == "alice"
    assert transport.environment["SLURM_CONF"] == "/etc/site/slurm.conf"


def test_ssh_with_submit_host():
    spawner = make_spawner(submit_host="login1", ssh_port=2222, query_user="cylchub", known_hosts="/k")

    submit = spawner.transport("alice")
    query = spawner.transport(None)

    assert isinstance(submit.transport, SSHTransport)
    assert submit.transport.target.username == "alice"
    assert submit.transport.target.port == 2222
    assert submit.transport.target.known_hosts == "/k"
    assert query.transport.target.username == "cylchub"


def test_query_user_required_over_ssh():
    spawner = make_spawner(submit_host="login1")

    with pytest.raises(BatchSpawnError, match="query_user"):
        spawner.transport(None)


def test_environment_prefix_is_arguments():
    recorder = Recorder()
    transport = EnvironmentTransport(recorder, {"SLURM_CONF": "/a b;c", "A": "1"})

    asyncio.run(transport.run(["squeue", "--jobs=1"]))

    assert recorder.argv == ["env", "A=1", "SLURM_CONF=/a b;c", "squeue", "--jobs=1"]


def test_environment_name_validated():
    with pytest.raises(TraitError, match="not an environment variable name"):
        make_spawner(scheduler_environment={"A=1; id": "x"})


class SlowSubmit(Recorder):
    """Stand-in transport whose sbatch returns only after ``release`` is set. It records every command."""

    def __init__(self):
        super().__init__()
        self.commands = []
        self.release = asyncio.Event()

    async def run(self, argv, *, input=None, timeout=60.0):
        self.commands.append(list(argv))
        if argv[0] == "sbatch":
            await self.release.wait()
            return CommandResult(0, "321\n", "")
        return CommandResult(0, "", "")


async def test_cancelled_start_still_cancels_job(searchable_root):
    transport = SlowSubmit()
    spawner = make_spawner(
        transport_factory=lambda host, user: transport, ui_authorization_root=searchable_root
    )
    spawner.api_token = "token"
    await spawner.apply_form_options({})

    start = asyncio.ensure_future(spawner.start())
    while not any(argv[0] == "sbatch" for argv in transport.commands):
        if start.done():
            raise AssertionError(f"start() ended before sbatch ran: {start.exception()!r}")
        await asyncio.sleep(0.01)
    start.cancel()
    stopping = asyncio.ensure_future(spawner.stop())
    await asyncio.sleep(0.05)
    transport.release.set()
    await stopping

    assert ["scancel", "321"] in transport.commands
    assert spawner.job_id == ""
