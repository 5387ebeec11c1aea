"""Command transports: run an argument list on the hub host or on a remote host."""

from cylc_hub.spawners.transport.base import CommandError, CommandResult, Transport

__all__ = ["CommandError", "CommandResult", "Transport"]
