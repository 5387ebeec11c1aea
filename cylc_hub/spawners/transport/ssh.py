"""Run commands on remote hosts over pooled asyncssh connections.

One :class:`SSHTransport` keeps one connection to one (host, port, user, key)
and opens a channel per command, so that polling many servers costs channels,
not connections. :class:`SSHPool` hands out one transport per such key to
every spawner in the hub process. Host keys are always checked against a
known_hosts file: asyncssh's defaults (``~/.ssh/known_hosts`` and
``/etc/ssh/ssh_known_hosts`` of the hub's account) or the file given.
"""

import asyncio
import logging
import shlex
from typing import NamedTuple, Optional

import asyncssh

from cylc_hub.spawners.transport.base import CommandError, CommandResult

log = logging.getLogger(__name__)

# OpenSSH's sshd allows 10 sessions per connection by default (MaxSessions)
# and counts closing sessions too. With OpenSSH 9.2 on Debian 12, 8 channels
# at once still met refusals and 4 did not, so a transport queues the rest.
DEFAULT_MAX_CHANNELS = 4

# Times a refused channel is requested again, with a growing pause, before failing.
MAX_CHANNEL_REFUSALS = 5


class SSHTarget(NamedTuple):
    """Host, port, account and key files of one connection, also its key in the pool."""

    host: str
    port: int = 22
    username: str = ""
    client_key: str = ""
    certificate: str = ""
    known_hosts: str = ""

    @property
    def label(self):
        """Return ``user@host:port`` for messages and logs."""
        return f"{self.username}@{self.host}:{self.port}"


def _known_host_entry_exists(target):
    """Return whether the known_hosts file in use lists any key for the target."""
    path = target.known_hosts or None
    try:
        known = asyncssh.read_known_hosts(path) if path else None
    except (OSError, ValueError):
        return False
    if known is None:
        return False
    trusted, *_ = known.match(target.host, "", target.port)
    return bool(trusted)


def connection_error(target, error):
    """Turn a failed connection attempt into a ``CommandError`` whose message tells the user what to do."""
    where = f"{target.host} (port {target.port})"
    known_hosts = target.known_hosts or "the hub's known_hosts file"
    if isinstance(error, asyncssh.HostKeyNotVerifiable):
        if _known_host_entry_exists(target):
            message = (
                f"The SSH host key of {where} has changed since it was recorded in "
                f"{known_hosts}. Ask the site administrator to check the host and "
                "update that file."
            )
        else:
            message = (
                f"The SSH host key of {where} is unknown: it is not in {known_hosts}. "
                "Ask the site administrator to add it."
            )
    elif isinstance(error, asyncssh.PermissionDenied):
        message = (
            f"SSH authentication as {target.username} on {target.host} failed. "
            "Ask the site administrator to check the hub's key for your account."
        )
    elif isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        message = (
            f"Connecting to {where} over SSH timed out. Try again later, or choose another host."
        )
    elif isinstance(error, (OSError, asyncssh.Error)):
        message = f"{where} cannot be reached over SSH. Try again later, or choose another host."
    else:
        raise TypeError(f"not a connection error: {error!r}")
    return CommandError(f"SSH connection to {target.label} failed: {error!r}", message)


class SSHTransport:
    """Run commands on one host over one lazily opened, reconnecting SSH connection."""

    def __init__(
        self,
        target,
        *,
        connect_timeout=10.0,
        keepalive_interval=30.0,
        max_channels=DEFAULT_MAX_CHANNELS,
        logger=None,
    ):
        self.target = target
        self.log = logger or log
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.connections_opened = 0
        # Incremented on every new connection, so port forwards made on an older
        # connection can be recognised as gone.
        self.generation = 0
        self._connection: Optional[asyncssh.SSHClientConnection] = None
        self._lock = asyncio.Lock()
        self._channels = asyncio.Semaphore(max_channels)

    def _client_keys(self):
        if not self.target.client_key:
            return ()
        if self.target.certificate:
            return [(self.target.client_key, self.target.certificate)]
        # asyncssh also loads KEY-cert.pub beside the key when that file exists.
        return [self.target.client_key]

    async def connect(self):
        """Return the open connection, opening one if there is none; raise ``CommandError`` on failure."""
        async with self._lock:
            connection = self._connection
            if connection is not None and not connection.is_closed():
                return connection

            target = self.target
            try:
                connection = await asyncssh.connect(
                    target.host,
                    target.port,
                    username=target.username,
                    client_keys=self._client_keys(),
                    known_hosts=target.known_hosts or (),
                    agent_path=None,
                    preferred_auth="publickey",
                    connect_timeout=self.connect_timeout,
                    keepalive_interval=self.keepalive_interval,
                )
            except (OSError, asyncssh.Error, asyncio.TimeoutError) as error:
                raise connection_error(target, error) from error

            self._connection = connection
            self.connections_opened += 1
            self.generation += 1
            self.log.info("SSH connection %s opened", target.label)
            return connection

    async def run(self, argv, *, input=None, timeout=60.0):
        """Run ``argv`` through the remote shell, each argument quoted; see ``Transport.run``.

        A connection that was lost since the last command is reopened and the
        command sent once more.
        """
        command = shlex.join(str(argument) for argument in argv)
        self.log.debug("SSH %s: %s", self.target.label, command)
        return await self._run(command, input, timeout, retry=True)

    async def run_script(self, script, *, input=None, timeout=60.0):
        """Run shell text in the remote account's shell; never resent after a lost connection.

        Only for site text and text whose values went through ``shlex.quote``.
        The caller logs the text, because only the caller can tell which parts are secret.
        """
        return await self._run(script, input, timeout, retry=False)

    async def _run(self, command, input, timeout, retry):
        reconnects = 1 if retry else 0
        refusals = 0
        while True:
            connection = await self.connect()
            try:
                async with self._channels:
                    result = await asyncio.wait_for(
                        connection.run(command, input=input, check=False), timeout
                    )
            except asyncssh.ChannelOpenError as error:
                # The command never started, so sending it again is safe. sshd
                # refuses a session while it still counts closing ones against
                # MaxSessions; a closed connection refuses every session.
                if connection.is_closed():
                    await self._forget(connection)
                refusals += 1
                if refusals > MAX_CHANNEL_REFUSALS:
                    raise self._failure(error) from error
                await asyncio.sleep(0.05 * refusals)
                continue
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError) as error:
                lost = error
            except asyncio.TimeoutError as error:
                first_word = command.split(maxsplit=1)[0] if command.strip() else command
                raise CommandError(
                    f"SSH command on {self.target.label} timed out after {timeout} s: {first_word}",
                    f"A command on {self.target.host} did not finish in {timeout:g} s. Try again later.",
                ) from error
            else:
                lost = _lost_during(connection, result)
                if lost is None:
                    return CommandResult(
                        _exit_status(result), _text(result.stdout), _text(result.stderr)
                    )

            await self._forget(connection)
            if reconnects == 0:
                raise self._failure(lost) from lost
            reconnects -= 1
            self.log.warning("SSH connection %s lost (%r); reconnecting", self.target.label, lost)

    def _failure(self, error):
        return CommandError(
            f"SSH command on {self.target.label} failed: {error!r}",
            f"The SSH connection to {self.target.host} failed. Try again later.",
        )

    async def forward_local_port(self, remote_host, remote_port, local_port=0):
        """Listen on 127.0.0.1 and forward each connection to ``remote_host:remote_port``.

        Returns the listener; its ``get_port()`` is the local port. The forward
        lives as long as this transport's current connection.
        """
        connection = await self.connect()
        try:
            return await connection.forward_local_port(
                "127.0.0.1", local_port, remote_host, remote_port
            )
        except (OSError, asyncssh.Error) as error:
            raise CommandError(
                f"Forwarding 127.0.0.1:{local_port} to {remote_host}:{remote_port} over {self.target.label} failed: {error!r}",
                f"The hub could not open a tunnel to {self.target.host}. Try again later.",
            ) from error

    async def _forget(self, connection):
        async with self._lock:
            if self._connection is connection:
                self._connection = None
        connection.abort()

    async def close(self):
        """Close the connection; the next command opens a new one."""
        async with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            await connection.wait_closed()


def _lost_during(connection, result):
    """Return a ``ConnectionLost`` error when the command ended because its connection closed.

    asyncssh returns a result without exit status or signal, instead of
    raising, when the connection drops while the command runs: for example
    when sshd and its session processes are stopped.
    """
    if result.exit_status is None and result.exit_signal is None and connection.is_closed():
        return asyncssh.ConnectionLost("the connection closed while the command ran")
    return None


def _exit_status(result):
    if result.exit_status is not None:
        return result.exit_status
    # The remote command was killed by a signal (asyncssh reports its name
    # only) or the channel closed without a status.
    return 255


def _text(output):
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output


class SSHPool:
    """One :class:`SSHTransport` per :class:`SSHTarget`, shared by every caller in the process."""

    def __init__(self):
        self._transports = {}

    def get(self, target, **options):
        """Return the transport for ``target``, made with ``options`` the first time."""
        transport = self._transports.get(target)
        if transport is None:
            transport = self._transports[target] = SSHTransport(target, **options)
        return transport

    @property
    def connections_opened(self):
        """Connections opened by every transport of the pool so far, reconnections included."""
        return sum(transport.connections_opened for transport in self._transports.values())

    async def close(self):
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.close()


# The pool that spawners share within the hub process.
shared_pool = SSHPool()
