"""Choices callables for the options form that query a scheduler and cache the result.

:class:`CachedChoices` wraps any async loader so that the form does not run a
scheduler command on every page view. :func:`sinfo_partition_choices` builds
one that lists Slurm partitions with their idle nodes after each name::

    from cylc_hub.spawners.form_cache import sinfo_partition_choices

    c.CylcSlurmSpawner.form_fields = [
        {"name": "partition", "type": "choice", "choices": sinfo_partition_choices(ttl=60)},
    ]
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Optional

from cylc_hub.spawners.transport import CommandError, Transport
from cylc_hub.spawners.transport.local import LocalTransport

log = logging.getLogger(__name__)

# sinfo fields: partition name without the default's "*", availability, and
# node counts as allocated/idle/other/total.
SINFO_FORMAT = "%R|%a|%F"


class CachedChoices:
    """Choices callable that keeps the result of ``load(spawner)`` for ``ttl`` seconds.

    Concurrent calls while a load runs wait for that load instead of
    starting another. When a load fails and an earlier result exists, the
    earlier result is returned (and the failure logged) until a load
    succeeds, because a scheduler that is briefly unreachable should not
    empty the form. Without an earlier result the error propagates, and the
    form shows that the choices could not be loaded.

    ``clock`` returns seconds and is replaceable in tests.
    """

    def __init__(
        self,
        load: Callable[[Any], Awaitable[list[Any]]],
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if ttl < 0:
            raise ValueError(f"ttl must be at least 0 seconds, not {ttl!r}")
        self.load = load
        self.ttl = ttl
        self.clock = clock
        self._choices: Optional[list[Any]] = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._choices is not None and self.clock() - self._loaded_at < self.ttl

    async def __call__(self, spawner: Any) -> list[Any]:
        if self._fresh():
            return self._choices

        async with self._lock:
            # Another call may have loaded the choices while this one waited.
            if self._fresh():
                return self._choices
            try:
                choices = await self.load(spawner)
            except Exception as error:
                if self._choices is None:
                    raise
                log.warning(
                    "Loading form choices failed, showing those from %.0f s ago: %s",
                    self.clock() - self._loaded_at,
                    error,
                )
                return self._choices

            self._choices = list(choices)
            self._loaded_at = self.clock()
            return self._choices

    def clear(self) -> None:
        """Forget the cached choices, so that the next call loads them again."""
        self._choices = None


def parse_sinfo_partitions(output: str) -> list[dict[str, str]]:
    """Return one choice per partition from ``sinfo --format=%R|%a|%F`` output.

    The description, shown after the name, is the idle node count, or the
    state of a partition that is not up. Raises ``ValueError`` naming the first line that
    does not have that format.
    """
    # partition -> [availability, idle, total], in the order sinfo lists them.
    partitions: dict[str, list] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|")
        counts = parts[2].split("/") if len(parts) == 3 else []
        if len(counts) != 4 or not all(count.isdigit() for count in counts):
            raise ValueError(f"sinfo output line {line[:80]!r} is not PARTITION|AVAIL|A/I/O/T")

        partition, availability = parts[0], parts[1]
        # Lines that repeat a partition are summed rather than dropped.
        entry = partitions.setdefault(partition, [availability, 0, 0])
        entry[1] += int(counts[1])
        entry[2] += int(counts[3])

    choices = []
    for partition, (availability, idle, total) in partitions.items():
        description = f"{idle} of {total} nodes idle"
        if availability != "up":
            description = availability
        choices.append({"value": partition, "label": partition, "description": description})
    return choices


def sinfo_partition_choices(
    ttl: float = 60.0,
    cluster: str = "",
    transport: Optional[Callable[[Any], Transport]] = None,
    timeout: float = 20.0,
    clock: Callable[[], float] = time.monotonic,
) -> CachedChoices:
    """Return a choices callable of Slurm partitions, with idle nodes, cached for ``ttl`` seconds.

    ``transport`` takes the spawner and returns the :class:`Transport` that
    runs ``sinfo`` (by default the hub host, as the hub's account).
    ``cluster`` adds ``--clusters`` on a multi-cluster site. A non-zero exit
    or unparsable output raises, and the form shows the error under the
    field.
    """
    argv = ["sinfo", "--noheader", f"--format={SINFO_FORMAT}"]
    if cluster:
        argv.append(f"--clusters={cluster}")

    async def load(spawner: Any) -> list[dict[str, str]]:
        runner = transport(spawner) if transport is not None else LocalTransport()
        result = await runner.run(argv, timeout=timeout)
        if result.exit_status != 0:
            raise CommandError(
                f"{' '.join(argv)} exited with {result.exit_status}: {result.stderr.strip()[:200]}",
                "The list of partitions could not be loaded.",
            )
        return parse_sinfo_partitions(result.stdout)

    return CachedChoices(load, ttl=ttl, clock=clock)
