"""Host choice for cylc-ssh: configured hosts, the form's host field and the least loaded host."""

import asyncio
import random
import time

from traitlets import Callable, Enum, Float, HasTraits, List, Unicode, Union

from cylc_hub.spawners.transport import CommandError

# Form value of the host field that lets the spawner choose by host_selection.
ANY_HOST = "any"

# (host, port) -> (time.monotonic() when read, load), shared by every spawner of the hub.
_load_cache = {}


def split_host(entry, default_port):
    """Return ``(host, port)`` for a ``remote_hosts`` entry ``host`` or ``host:port``."""
    host, separator, port = entry.rpartition(":")
    if separator and port.isdigit() and host and ":" not in host:
        return host, int(port)
    return entry, default_port


async def host_choices(spawner):
    """Return the host field's choices: the spawner's pick first, then each configured host."""
    hosts = await spawner.configured_hosts()
    label = {
        "least-loaded": "Least loaded host",
        "random": "Any host",
        "first": "First host that responds",
    }
    return [{"value": ANY_HOST, "label": label[spawner.host_selection]}] + hosts


class HostSelectionMixin(HasTraits):
    """Spawner mixin that orders the configured hosts for a start.

    Expects the spawner's ``form_values``, ``ssh_port``, ``command_timeout``,
    ``transport_for(host, port)``, ``log`` and ``_log_name``.
    """

    remote_hosts = Union(
        [List(Unicode()), Callable()],
        default_value=[],
        help="""Hosts that may run UI servers, as ``host`` or ``host:port`` strings.

        Or a callable taking the spawner and returning such a list (it may be
        async), to give each user their own hosts. Users choose among them in
        the options form's ``host`` field, or leave the choice to
        ``host_selection``.
        """,
    ).tag(config=True)

    host_selection = Enum(
        ["least-loaded", "random", "first"],
        default_value="least-loaded",
        help="""How the spawner picks a host when the user does not choose one.

        ``least-loaded`` reads each host's load with ``load_command`` (cached
        for ``load_cache_seconds``), ``random`` shuffles, ``first`` keeps the
        configured order. A host that cannot be reached is logged and skipped.
        """,
    ).tag(config=True)

    load_command = List(
        Unicode(),
        default_value=["cat", "/proc/loadavg"],
        help="""Command whose output starts with the host's load as a number.

        Runs on the pooled connection as the user. The default reads the
        one-minute load average of Linux.
        """,
    ).tag(config=True)

    load_cache_seconds = Float(
        30.0,
        min=0,
        help="Seconds for which a host's load, once read, is used for every user's choice.",
    ).tag(config=True)

    async def configured_hosts(self):
        hosts = self.remote_hosts
        if callable(hosts):
            hosts = hosts(self)
            if asyncio.iscoroutine(hosts) or isinstance(hosts, asyncio.Future):
                hosts = await hosts
        return [str(host) for host in hosts]

    async def host_load(self, host, port):
        """Return the host's load (cached), or None when it cannot be read."""
        cached = _load_cache.get((host, port))
        if cached and time.monotonic() - cached[0] < self.load_cache_seconds:
            return cached[1]

        result = await self.transport_for(host, port).run(
            self.load_command, timeout=self.command_timeout
        )
        try:
            load = float(result.stdout.split()[0])
        except (IndexError, ValueError):
            self.log.warning(
                "Load of %s unreadable from %r for %s", host, result.stdout[:80], self._log_name
            )
            load = None
        _load_cache[(host, port)] = (time.monotonic(), load)
        return load

    async def candidate_hosts(self):
        """Return ``(host, port)`` pairs in the order to try them, none when no host is configured."""
        chosen = self.form_values.get("host", ANY_HOST)
        hosts = [split_host(entry, self.ssh_port) for entry in await self.configured_hosts()]
        if not hosts:
            return []
        if chosen != ANY_HOST:
            return [split_host(chosen, self.ssh_port)]
        if self.host_selection == "random":
            return random.sample(hosts, len(hosts))
        if self.host_selection == "first":
            return hosts

        loads = await asyncio.gather(
            *(self.host_load(*host) for host in hosts), return_exceptions=True
        )
        ranked = []
        for (host, port), load in zip(hosts, loads):
            if isinstance(load, CommandError):
                self.log.warning("Skipping %s:%s for %s: %s", host, port, self._log_name, load)
                continue
            if isinstance(load, BaseException):
                raise load
            ranked.append((float("inf") if load is None else load, host, port))
        # Unreachable hosts stay last, so that their error reaches the user if all fail.
        reachable = [(host, port) for _, host, port in sorted(ranked)]
        return reachable + [host for host in hosts if host not in reachable]
