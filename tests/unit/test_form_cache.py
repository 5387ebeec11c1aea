"""Cached choices and Slurm partitions from sinfo, with stand-ins for the scheduler."""

import asyncio
import os
import stat
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import LocalProcessSpawner

from cylc_hub.spawners.form import OptionsFormMixin
from cylc_hub.spawners.form_cache import CachedChoices, parse_sinfo_partitions, sinfo_partition_choices
from cylc_hub.spawners.transport import CommandError, CommandResult
from cylc_hub.spawners.transport.local import LocalTransport

SINFO_OUTPUT = "debug|up|1/3/0/4\nlong|up|8/0/0/8\nmaint|down|0/0/2/2\n"


class FormSpawner(OptionsFormMixin, LocalProcessSpawner):
    pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class StandInTransport:
    """Stand-in for a Transport: records each argv and returns canned sinfo results."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    async def run(self, argv, *, input=None, timeout=60.0):
        self.calls.append(list(argv))
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def close(self):
        pass


def ok(stdout=SINFO_OUTPUT):
    return CommandResult(0, stdout, "")


def test_parse_sinfo_partitions():
    assert parse_sinfo_partitions(SINFO_OUTPUT) == [
        {"value": "debug", "label": "debug", "description": "3 of 4 nodes idle"},
        {"value": "long", "label": "long", "description": "0 of 8 nodes idle"},
        {"value": "maint", "label": "maint", "description": "down"},
    ]


def test_parse_sinfo_sums_repeated_partition():
    assert parse_sinfo_partitions("debug|up|1/3/0/4\ndebug|up|0/2/0/2\n\n") == [
        {"value": "debug", "label": "debug", "description": "5 of 6 nodes idle"}
    ]


@pytest.mark.parametrize("output", ["debug up 1/3/0/4", "debug|up|1/3/0", "debug|up|a/b/c/d", "x|y"])
def test_parse_sinfo_bad_line(output):
    with pytest.raises(ValueError) as caught:
        parse_sinfo_partitions(output)
    assert "is not PARTITION|AVAIL|A/I/O/T" in str(caught.value)


async def test_sinfo_argv_and_cache_ttl():
    clock = Clock()
    transport = StandInTransport(ok())
    choices = sinfo_partition_choices(ttl=30, cluster="c1", transport=lambda spawner: transport, clock=clock)

    first = await choices(None)
    clock.now += 29
    second = await choices(None)
    clock.now += 2
    await choices(None)

    assert first == second
    assert transport.calls == [["sinfo", "--noheader", "--format=%R|%a|%F", "--clusters=c1"]] * 2


async def test_sinfo_failure_without_cache_raises():
    transport = StandInTransport(CommandResult(1, "", "slurm_load_partitions: Unable to contact slurm controller"))
    choices = sinfo_partition_choices(transport=lambda spawner: transport)

    with pytest.raises(CommandError) as caught:
        await choices(None)

    assert "exited with 1: slurm_load_partitions" in str(caught.value)


async def test_cached_choices_keep_old_result_on_failure(caplog):
    clock = Clock()
    transport = StandInTransport(ok(), CommandError("timed out", "Try again."))
    choices = sinfo_partition_choices(ttl=10, transport=lambda spawner: transport, clock=clock)

    first = await choices(None)
    clock.now += 60
    second = await choices(None)

    assert second == first
    assert "Loading form choices failed" in caplog.text


async def test_cached_choices_one_load_for_concurrent_calls():
    loads = []

    async def load(spawner):
        loads.append(spawner)
        await asyncio.sleep(0.01)
        return ["a"]

    choices = CachedChoices(load, ttl=60)

    results = await asyncio.gather(*(choices(index) for index in range(5)))

    assert results == [["a"]] * 5
    assert len(loads) == 1


async def test_cached_choices_clear_reloads():
    loads = []

    async def load(spawner):
        loads.append(spawner)
        return ["a"]

    choices = CachedChoices(load, ttl=60)
    await choices(1)
    choices.clear()
    await choices(2)

    assert loads == [1, 2]


def test_cached_choices_negative_ttl():
    with pytest.raises(ValueError) as caught:
        CachedChoices(lambda spawner: None, ttl=-1)
    assert "ttl must be at least 0 seconds" in str(caught.value)


@pytest.fixture
def stand_in_sinfo(tmp_path):
    """A stand-in sinfo program on a private PATH: it prints fixed partitions and its arguments."""
    script = tmp_path / "sinfo"
    script.write_text(
        "#!/bin/sh\n"
        'echo "$@" > "$(dirname "$0")/arguments"\n'
        "printf 'debug|up|1/3/0/4\\nlong|up|8/0/0/8\\n'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return tmp_path


async def test_sinfo_choices_in_form_through_local_transport(stand_in_sinfo):
    path = f"{stand_in_sinfo}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    transport = LocalTransport(environment={"PATH": path})
    field = {"name": "partition", "type": "choice",
             "choices": sinfo_partition_choices(transport=lambda spawner: transport)}
    orm_spawner = SimpleNamespace(name="", server=None, user_options=None)
    spawner = FormSpawner(form_fields=[field], orm_spawner=orm_spawner,
                          user=SimpleNamespace(name="alice", groups=[]), form_os_groups=False)

    html = await spawner.get_options_form()
    await spawner.apply_form_options({"partition": "long"})

    assert ">debug – 3 of 4 nodes idle</option>" in html
    assert spawner.form_values == {"partition": "long"}
    assert (stand_in_sinfo / "arguments").read_text().split() == ["--noheader", "--format=%R|%a|%F"]
