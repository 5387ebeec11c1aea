"""The local transport: argument lists, as the user, with a clean environment."""

import asyncio
import os
import time

import pytest

from cylc_hub.spawners.transport.base import CommandError
from cylc_hub.spawners.transport.local import LocalTransport

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")


async def test_argument_is_not_shell_text():
    result = await LocalTransport().run(["echo", "a; echo b", "$(id)"])

    assert result.exit_status == 0
    assert result.stdout == "a; echo b $(id)\n"


async def test_input_reaches_stdin():
    result = await LocalTransport().run(["cat"], input="secret\n")

    assert result.stdout == "secret\n"


async def test_environment_is_only_what_is_given(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "hub-secret")

    result = await LocalTransport().run(["env"])

    assert "hub-secret" not in result.stdout
    assert "PATH=" in result.stdout


async def test_exit_status_returned():
    result = await LocalTransport().run(["sh", "-c", "echo bad >&2; exit 3"])

    assert result.exit_status == 3
    assert result.stderr == "bad\n"


async def test_missing_program_is_command_error():
    with pytest.raises(CommandError) as raised:
        await LocalTransport().run(["/nonexistent/sbatch"])

    assert "could not be run" in raised.value.user_message


async def test_timeout_kills_process_group():
    started = time.monotonic()

    with pytest.raises(CommandError, match="timed out"):
        await LocalTransport().run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)

    assert time.monotonic() - started < 5


@needs_root
async def test_runs_as_user_in_home(password):
    result = await LocalTransport(user="alice").run(["sh", "-c", 'id -un; pwd; echo "$HOME"'])

    assert result.stdout.split() == ["alice", "/home/alice", "/home/alice"]
