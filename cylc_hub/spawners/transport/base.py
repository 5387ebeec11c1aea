"""The interface that every command transport implements."""

from typing import NamedTuple, Protocol


class CommandResult(NamedTuple):
    """Result of one finished command; output is decoded as UTF-8 with replacement."""

    exit_status: int
    stdout: str
    stderr: str


class CommandError(Exception):
    """A command could not be run at all: host unreachable, authentication failed, timed out.

    ``user_message`` is short and tells the user what to do; ``str(error)`` carries the
    detail for the hub log. A command that ran and exited non-zero is not an
    error of the transport: it returns a ``CommandResult``.
    """

    def __init__(self, detail, user_message):
        super().__init__(detail)
        self.user_message = user_message


class Transport(Protocol):
    """Run commands given as argument lists, never as shell text built by the caller.

    A transport that must pass through a remote shell (SSH) quotes every
    argument with ``shlex.quote``. ``input`` is written to the command's
    standard input and closed; secrets travel this way, never in ``argv``.
    """

    async def run(self, argv, *, input=None, timeout=60.0) -> CommandResult:
        """Run ``argv`` to completion and return its result; raise ``CommandError`` if it cannot run."""
        ...

    async def close(self) -> None:
        """Release connections; later calls to ``run`` may open new ones."""
        ...
