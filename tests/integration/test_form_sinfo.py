"""Partition choices from sinfo of a real one-node Slurm cluster."""

import os

import pytest

from cylc_hub.spawners.form_cache import sinfo_partition_choices
from cylc_hub.spawners.transport.local import LocalTransport
from slurmharness import PARTITION, remove_slurm, start_slurm

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def slurm():
    cluster = start_slurm()
    yield cluster
    remove_slurm(cluster)


async def test_sinfo_choices_from_real_slurm(slurm):
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURM_CONF": str(slurm.conf)}
    transport = LocalTransport(environment=environment)
    choices = sinfo_partition_choices(ttl=60, transport=lambda spawner: transport)

    loaded = await choices(None)

    assert [choice["value"] for choice in loaded] == [PARTITION]
    # The one node is idle or busy with another test's job, so the count is 0 or 1 of 1.
    assert loaded[0]["description"] in ("1 of 1 nodes idle", "0 of 1 nodes idle")
