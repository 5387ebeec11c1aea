"""The pooled SSH transport against a real sshd on loopback."""

import asyncio

import pytest

from cylc_hub.spawners.transport import CommandError
from cylc_hub.spawners.transport.ssh import SSHPool, SSHTarget
from sshharness import remove_site, start_site


@pytest.fixture(scope="module")
def site():
    started = start_site(loads=("1.5",), addresses=("127.0.0.1",))
    yield started
    remove_site(started)


@pytest.fixture
async def pool():
    created = SSHPool()
    yield created
    await created.close()


def target(site, **changes):
    host = site.hosts[0]
    fields = dict(
        host=host.address,
        port=host.port,
        username="alice",
        client_key=str(site.client_key),
        known_hosts=str(site.known_hosts),
    )
    fields.update(changes)
    return SSHTarget(**fields)


async def test_run_quotes_arguments(site, pool):
    transport = pool.get(target(site))

    result = await transport.run(["printf", "%s|", "two words", "$(id -u)", "a'b"])

    assert result.exit_status == 0
    assert result.stdout == "two words|$(id -u)|a'b|"


async def test_run_sends_input_and_status(site, pool):
    transport = pool.get(target(site))

    result = await transport.run(
        ["sh", "-c", 'read line; echo "got $line"; exit 7'], input="secret\n"
    )

    assert result.exit_status == 7
    assert result.stdout == "got secret\n"


async def test_many_commands_one_connection(site, pool):
    transport = pool.get(target(site))

    results = await asyncio.gather(*(transport.run(["echo", str(index)]) for index in range(40)))

    assert [result.stdout for result in results] == [f"{index}\n" for index in range(40)]
    assert pool.connections_opened == 1


async def test_reconnects_after_restart(site, pool):
    transport = pool.get(target(site))
    assert (await transport.run(["true"])).exit_status == 0

    site.hosts[0].stop()
    site.hosts[0].start()
    result = await transport.run(["id", "-un"])

    assert result.stdout == "alice\n"
    assert pool.connections_opened == 2


async def test_certificate_authenticates(site, pool):
    without = pool.get(target(site, client_key=str(site.certified_key)))
    with pytest.raises(CommandError) as raised:
        await without.run(["true"])
    assert "authentication as alice" in raised.value.user_message

    transport = pool.get(
        target(site, client_key=str(site.certified_key), certificate=str(site.certificate))
    )
    result = await transport.run(["id", "-un"])

    assert result.stdout == "alice\n"


async def test_command_timeout(site, pool):
    transport = pool.get(target(site))

    with pytest.raises(CommandError) as raised:
        await transport.run(["sleep", "10"], timeout=0.5)

    assert "did not finish in 0.5 s" in raised.value.user_message


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"client_key": "WRONG_KEY"}, ["authentication as alice on 127.0.0.1 failed"]),
        ({"known_hosts": "CHANGED_KNOWN_HOSTS"}, ["has changed since it was recorded in"]),
        (
            {"known_hosts": "EMPTY_KNOWN_HOSTS"},
            ["is unknown", "Ask the site administrator to add it"],
        ),
        ({"port": 1}, ["127.0.0.1 (port 1) cannot be reached", "choose another host"]),
    ],
    ids=["wrong-key", "changed-host-key", "unknown-host-key", "unreachable"],
)
async def test_connection_error_messages(site, pool, tmp_path, changes, words):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    paths = {
        "WRONG_KEY": str(site.wrong_key),
        "CHANGED_KNOWN_HOSTS": str(site.changed_known_hosts),
        "EMPTY_KNOWN_HOSTS": str(empty),
    }
    changes = {name: paths.get(value, value) for name, value in changes.items()}
    transport = pool.get(target(site, **changes))

    with pytest.raises(CommandError) as raised:
        await transport.run(["true"])

    for word in words:
        assert word in raised.value.user_message
    assert pool.connections_opened == 0
