"""Run commands on the hub host, as the hub's own account or as another user."""

import asyncio
import os
import pwd
import signal

from cylc_hub.spawners.transport.base import CommandError, CommandResult

RUNUSER = "/usr/sbin/runuser"

# Variables a command inherits from the hub when no environment is given: enough
# to find programs and read text, and nothing of the hub's own secrets.
DEFAULT_KEEP = ("PATH", "LANG", "LC_ALL", "TZ")


class LocalTransport:
    """Run argument lists on the hub host with ``asyncio.create_subprocess_exec``.

    ``user``: when set, and the hub runs as root, each command runs as that
    user through ``runuser -u USER --`` (an argument list, never a shell
    line), in the user's home directory, with ``HOME``, ``USER`` and
    ``LOGNAME`` set for that user. When the hub already runs as ``user``, the
    command runs directly. Without ``user``, commands run in ``/``.

    ``environment``: the exact variables of every command, apart from the
    user's ``HOME``, ``USER`` and ``LOGNAME``. ``None`` keeps only
    ``DEFAULT_KEEP`` from the hub's environment, so a command such as
    ``sbatch``, which copies its environment into the job, never receives
    the hub's secrets.
    """

    def __init__(self, user=None, environment=None):
        self.user = user
        if environment is None:
            environment = {name: os.environ[name] for name in DEFAULT_KEEP if name in os.environ}
        self.environment = dict(environment)

    def _command(self, argv):
        argv = [str(argument) for argument in argv]
        if not argv:
            raise ValueError("the command is empty")
        environment = dict(self.environment)
        if self.user is None:
            return argv, environment, "/"

        account = pwd.getpwnam(self.user)
        environment.update(HOME=account.pw_dir, USER=self.user, LOGNAME=self.user)
        if os.geteuid() == account.pw_uid:
            return argv, environment, account.pw_dir
        if os.geteuid() != 0:
            raise CommandError(
                f"cannot run {argv[0]} as {self.user}: the hub runs as uid {os.geteuid()}, not root",
                "The hub cannot start commands as you. Ask the site administrator.",
            )
        return [RUNUSER, "-u", self.user, "--", *argv], environment, account.pw_dir

    async def run(self, argv, *, input=None, timeout=60.0):
        """Run ``argv`` to completion and return its result; raise ``CommandError`` if it cannot run."""
        command, environment, directory = self._command(argv)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment,
                cwd=directory,
                start_new_session=True,
            )
        except OSError as error:
            raise CommandError(
                f"cannot run {command[0]}: {error}",
                f"The command {os.path.basename(argv[0])} could not be run on the hub host. "
                "Ask the site administrator.",
            ) from error

        data = input.encode() if isinstance(input, str) else input
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(data), timeout)
        except asyncio.TimeoutError:
            # The command leads its own process group, so this also stops what
            # runuser started.
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise CommandError(
                f"{argv[0]} timed out after {timeout} s",
                f"The command {os.path.basename(argv[0])} timed out. Try again later.",
            ) from None
        return CommandResult(
            process.returncode,
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
        )

    async def close(self):
        """Nothing to release: each command is its own process."""
