"""Base class of the batch spawners: submit a job, wait for its port, poll, cancel.

:class:`CylcBatchSpawner` owns the flow. A scheduler module (``slurm.py``,
``pbs.py``) supplies a scheduler object with these steps, each a plain
method with no I/O of its own:

- ``submit_argv()``: the submit command; the job script goes to its stdin.
  Called by :meth:`CylcBatchSpawner.submit`.
- ``parse_job_id(stdout)``: the job id in the submit command's output.
- ``query_argv(job_ids)`` and ``parse_query(result, job_ids)``: one query
  for many jobs and its statuses. Called by the shared ``JobPoller``.
- ``cancel_argv(job_id)``: called by :meth:`CylcBatchSpawner.stop`.

and the spawner subclass supplies ``make_scheduler()``, ``template_values()``
and its form fields.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time

from jupyterhub.spawner import Spawner
from traitlets import Callable, Dict, Float, Integer, TraitError, Unicode, default, validate

from cylc_hub.spawners.batch_jobs import DONE, PENDING, RUNNING, JobPoller, shared_poller
from cylc_hub.spawners.authorization import AuthorizationFileMixin
from cylc_hub.spawners.batch_script import ENV_NAME, ScriptValueError, render_job_script
from cylc_hub.spawners.form import OptionsFormMixin
from cylc_hub.spawners.local import DEFAULT_FORM_FIELDS
from cylc_hub.spawners.transport.base import CommandError
from cylc_hub.spawners.transport.local import LocalTransport
from cylc_hub.spawners.transport.ssh import SSHTarget, shared_pool

# Environment variables that never go into a job script: the token travels in a file.
SECRET_VARIABLES = {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"}
UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]")

# Jobs whose cancel failed, kept in the state so that the next start cancels them.
MAX_UNCANCELLED_JOBS = 10

# Creates the token file readable only by the user. The paths arrive as "$1" and "$2",
# never as shell text.
WRITE_TOKEN_PROGRAM = 'umask 077 && mkdir -p -- "$1" && cat > "$1/$2"'


class BatchSpawnError(Exception):
    """Failure of a start: ``jupyterhub_message`` is shown to the user and ``str()`` goes to the log."""

    def __init__(self, detail, user_message):
        super().__init__(detail)
        self.jupyterhub_message = user_message


def _last_lines(text, count):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-count:])


class EnvironmentTransport:
    """A remote transport whose every command runs through ``env NAME=VALUE ...``.

    SSH servers accept few client variables, so the values travel as quoted
    arguments of ``env`` instead.
    """

    def __init__(self, transport, environment):
        self.transport = transport
        self.prefix = ["env", *(f"{name}={value}" for name, value in sorted(environment.items()))]

    async def run(self, argv, *, input=None, timeout=60.0):
        argv = [*self.prefix, *argv] if len(self.prefix) > 1 else list(argv)
        return await self.transport.run(argv, input=input, timeout=timeout)

    async def close(self):
        await self.transport.close()


class CylcBatchSpawner(AuthorizationFileMixin, OptionsFormMixin, Spawner):
    """Start the Cylc UI Server as a batch job, submitted as the user."""

    submit_host = Unicode(
        "",
        help="""Login host on which jobs are submitted, queried and cancelled.

        Empty: on the hub host, as the user through ``runuser`` (the hub runs
        as root). Any other host is reached over SSH as the user, through the
        SSH spawner's connection pool (one connection per host and user).
        """,
    ).tag(config=True)

    transport_factory = Callable(
        None,
        allow_none=True,
        help="""Callable ``(host, user)`` returning the transport for commands on ``submit_host``.

        ``user`` is the user's name for submit, cancel and file commands, and
        ``None`` for the shared queue query, which runs as the hub's own
        account. ``None`` (the default): the local transport without
        ``submit_host``, else the pooled SSH transport configured by the
        ``ssh_*``, ``known_hosts`` and ``query_user`` options.
        """,
    ).tag(config=True)

    ssh_port = Integer(22, min=1, max=65535, help="""SSH port of ``submit_host``.""").tag(config=True)

    ssh_keyfile = Unicode(
        "",
        help="""Private key with which the hub logs in to ``submit_host`` as each user.

        Empty: asyncssh's default keys of the hub's account.
        """,
    ).tag(config=True)

    known_hosts = Unicode(
        "",
        help="""known_hosts file that ``submit_host``'s key is checked against.

        Empty: the hub account's ``~/.ssh/known_hosts``. Host keys are always
        checked; an unknown or changed key fails the connection.
        """,
    ).tag(config=True)

    query_user = Unicode(
        "",
        help="""Account on ``submit_host`` that runs the shared queue query over SSH.

        Required with ``submit_host``; any account that may list every job works.
        """,
    ).tag(config=True)

    scheduler_environment = Dict(
        value_trait=Unicode(),
        help="""Environment variables for every scheduler command, such as ``{"SLURM_CONF": PATH}``.

        On the hub host they are set directly; over SSH each command runs
        through ``env NAME=VALUE``. Names must be letters, digits and ``_``.
        """,
    ).tag(config=True)

    @validate("scheduler_environment")
    def _check_scheduler_environment(self, proposal):
        for name in proposal["value"]:
            if not ENV_NAME.fullmatch(name):
                raise TraitError(f"scheduler_environment: {name!r} is not an environment variable name")
        return proposal["value"]

    batch_poll_interval = Float(
        10,
        min=0.1,
        help="""Seconds between two queue queries; each query covers every job on the host.""",
    ).tag(config=True)

    batch_poll_max_interval = Float(
        300,
        min=1,
        help="""Maximum seconds between queries while scheduler queries keep failing.""",
    ).tag(config=True)

    batch_command_timeout = Float(
        60, min=1, help="""Seconds a submit, query or cancel command may take."""
    ).tag(config=True)

    job_template = Unicode(
        help="""Jinja2 job script template: a path, or a name in ``cylc_hub/templates/batch``.

        Every printed value must pass through the ``q``, ``q_args``,
        ``directive`` or ``env_name`` filter; a template that prints a bare
        value is rejected.
        """,
    ).tag(config=True)

    job_directory = Unicode(
        ".cylc/hub/jobs",
        help="""Directory for job output and token files, relative to the user's home on the submit host.

        It must be visible from the compute nodes at the same path.
        """,
    ).tag(config=True)

    node_address = Unicode(
        "{node}",
        help="""Address the hub connects to, with ``{node}`` replaced by the job's node name.""",
    ).tag(config=True)

    output_tail_lines = Integer(
        20, min=0, help="""Lines of job output shown when a job ends before its server starts."""
    ).tag(config=True)

    python = Unicode(
        sys.executable,
        help="""Python in the job that runs ``cylc_hub.spawners.batch_singleuser``.""",
    ).tag(config=True)

    max_memory_mb = Integer(
        0,
        min=0,
        help="""Largest memory request in MB the form allows; 0 shows no memory field.""",
    ).tag(config=True)

    clock = Callable(time.monotonic, help="""Monotonic clock in seconds, replaceable in tests.""")

    # State kept in the hub database across restarts.
    job_id = Unicode("")
    job_host = Unicode("")
    job_node = Unicode("")

    @default("ip")
    def _default_ip(self):
        return "0.0.0.0"

    @default("cmd")
    def _default_cmd(self):
        return [os.path.join(sys.prefix, "bin", "cylc"), "hubapp"]

    @default("start_timeout")
    def _default_start_timeout(self):
        # Queue waits are long; the spawner fails earlier when the job ends.
        return 3600

    @default("http_timeout")
    def _default_http_timeout(self):
        return 120

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.scheduler = self.make_scheduler()
        self.job_status = None
        self.submitted_at = None
        self._port_future = None
        self._submission = None
        self._watching = None
        # Jobs whose cancel could not reach the scheduler: {"job_id": ..., "job_host": ...}.
        self.uncancelled_jobs = []

    # -- steps a scheduler subclass supplies -------------------------------------

    def make_scheduler(self):
        """Return the scheduler object. Called once, by ``__init__``."""
        raise NotImplementedError

    def template_values(self):
        """Return the scheduler-specific template values from ``form_values``. Called by ``start``."""
        raise NotImplementedError

    # -- names, transports and the shared poller ---------------------------------

    @property
    def job_name(self):
        server = f"-{self.name}" if self.name else ""
        return UNSAFE_NAME_CHARACTERS.sub("_", f"cylc-hub-{self.user.name}{server}")

    @property
    def output_path(self):
        return f"{self.job_directory}/{self.job_name}.out"

    @property
    def host(self):
        """Login host of the current job, else of the next submission."""
        return self.job_host if self.job_id else self.submit_host

    def transport(self, user, host=None):
        """Return the transport to ``host``, by default ``self.host``, as ``user``, or as the query account for None."""
        host = self.host if host is None else host
        if self.transport_factory is not None:
            return self.transport_factory(host, user)
        if not host:
            return LocalTransport(user=user, environment=self.submit_environment())

        if user is None and not self.query_user:
            raise BatchSpawnError(
                f"submit_host {host!r} is set but query_user is not",
                "The hub is not configured to query the batch system. Ask the site administrator.",
            )
        target = SSHTarget(
            host=host,
            port=self.ssh_port,
            username=user or self.query_user,
            client_key=os.path.expanduser(self.ssh_keyfile) if self.ssh_keyfile else "",
            known_hosts=os.path.expanduser(self.known_hosts) if self.known_hosts else "",
        )
        transport = shared_pool.get(target, logger=self.log)
        return EnvironmentTransport(transport, self.scheduler_environment)

    def submit_environment(self):
        """Return the environment of local scheduler commands: PATH, LANG and ``SLURM_CONF``-like settings."""
        names = ("PATH", "LANG", "LC_ALL", "TZ", *self.scheduler.environment_names)
        environment = {name: os.environ[name] for name in names if name in os.environ}
        environment.update(self.scheduler_environment)
        return environment

    @property
    def poller(self) -> JobPoller:
        key = (type(self.scheduler).__name__, self.host, self.scheduler.key)

        def create():
            return JobPoller(
                self.scheduler,
                self.transport(None),
                interval=self.batch_poll_interval,
                max_interval=self.batch_poll_max_interval,
                timeout=self.batch_command_timeout,
                clock=self.clock,
                name=f"{type(self.scheduler).__name__}@{self.host or 'localhost'}",
                logger=self.log,
            )

        return shared_poller(key, create)

    # -- state across hub restarts -----------------------------------------------

    def load_state(self, state):
        super().load_state(state)
        self.job_id = state.get("job_id", "")
        self.job_host = state.get("job_host", "")
        self.job_node = state.get("job_node", "")
        if state.get("port"):
            self.port = int(state["port"])
        self.uncancelled_jobs = list(state.get("uncancelled_jobs", []))
        # After a restart any successful query shows whether the job still exists.
        self.submitted_at = None

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state.update(job_id=self.job_id, job_host=self.job_host, job_node=self.job_node)
            if self.port:
                state["port"] = self.port
        # Kept across clear_state, so that the next start cancels these jobs.
        if self.uncancelled_jobs:
            state["uncancelled_jobs"] = list(self.uncancelled_jobs)
        return state

    def clear_state(self):
        super().clear_state()
        self.job_id = ""
        self.job_host = ""
        self.job_node = ""
        self.job_status = None

    def _save_state(self):
        """Write the state now, so that a hub restarted during a queue wait still has the job id."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            self.db.commit()

    # -- the options form -----------------------------------------------------

    def batch_form_fields(self, queue_field, queue_label, queues):
        """Return cylc-local's fields, then a choice of ``queues``, run time and memory.

        The queue field is left out when ``queues`` is empty, and memory when
        ``max_memory_mb`` is 0. ``queue_label`` names the scheduler's word
        (partition, queue) in the labels.
        """
        fields = list(DEFAULT_FORM_FIELDS)
        if queues:
            fields.append(
                {
                    "name": queue_field,
                    "type": "choice",
                    "label": queue_label.capitalize(),
                    "default": queues[0],
                    "choices": list(queues),
                }
            )
        fields.append(
            {
                "name": "walltime",
                "type": "integer",
                "label": "Run time (minutes)",
                "help": "The server stops when this time is up.",
                "default": 60,
                "min": 5,
                "max": 1440,
            }
        )
        if self.max_memory_mb:
            fields.append(
                {
                    "name": "memory",
                    "type": "integer",
                    "label": "Memory (MB)",
                    "help": f"0 takes the {queue_label}'s default.",
                    "default": 0,
                    "min": 0,
                    "max": self.max_memory_mb,
                }
            )
        return fields

    # -- the job script --------------------------------------------------------

    def get_args(self):
        return self.log_level_args(super().get_args())

    def job_command(self):
        """Return the argument list the job runs: the port reporter, then the server."""
        return [self.python, "-m", "cylc_hub.spawners.batch_singleuser", *self.cmd, *self.get_args()]

    def render_script(self):
        """Render the job script; the token is not in it. Called by ``start``."""
        environment = sorted(
            (name, value) for name, value in self.get_env().items() if name not in SECRET_VARIABLES
        )
        values = {
            "job_name": self.job_name,
            "output_path": self.output_path,
            "token_file": f"{self.job_directory}/{self.job_name}.token",
            "environment": environment,
            "working_directory": "",
            "command": self.job_command(),
            **self.template_values(),
        }
        return render_job_script(self.job_template, values)

    # -- start -----------------------------------------------------------------

    async def _run(self, user, argv, what, input=None, host=None):
        try:
            transport = self.transport(user, host)
            return await transport.run(argv, input=input, timeout=self.batch_command_timeout)
        except CommandError as error:
            raise BatchSpawnError(f"{what} for {self._log_name} failed: {error}", error.user_message) from error

    async def write_token_file(self):
        """Write the server's token into a file readable by the user only. Called by ``start``."""
        argv = ["sh", "-c", WRITE_TOKEN_PROGRAM, "sh", self.job_directory, f"{self.job_name}.token"]
        result = await self._run(self.user.name, argv, "Writing the token file", input=self.api_token)
        if result.exit_status != 0:
            raise BatchSpawnError(
                f"writing the token file for {self._log_name} failed: {result.stderr.strip()}",
                f"The hub could not write into ~/{self.job_directory}: {_last_lines(result.stderr, 1)}",
            )

    async def submit(self, script):
        """Submit ``script`` as the user and return the job id. Called by ``start``."""
        argv = self.scheduler.submit_argv()
        self.log.debug("Submitting %s for %s: %s", self.job_name, self._log_name, argv)
        result = await self._run(self.user.name, argv, "Submitting the job", input=script)
        if result.exit_status != 0 and self.scheduler_unreachable(result):
            raise BatchSpawnError(
                f"{argv[0]} for {self._log_name} could not reach the scheduler: {result.stderr.strip()}",
                f"The batch system did not respond, so no job was submitted "
                f"({_last_lines(result.stderr, 1)}). Try again later, or ask the site "
                "administrator if this persists.",
            )
        if result.exit_status != 0:
            message = _last_lines(result.stderr or result.stdout, 3) or f"exit status {result.exit_status}"
            raise BatchSpawnError(
                f"{argv[0]} for {self._log_name} failed with status {result.exit_status}: {result.stderr.strip()}",
                f"The batch system rejected the job: {message}",
            )
        try:
            return self.scheduler.parse_job_id(result.stdout)
        except ValueError as error:
            raise BatchSpawnError(
                f"{argv[0]} for {self._log_name} printed no job id: {result.stdout!r}",
                "The job was submitted but its id could not be read. Ask the site administrator.",
            ) from error

    def scheduler_unreachable(self, result):
        """Return whether a failed command's error output shows that the scheduler could not be reached."""
        messages = getattr(self.scheduler, "unreachable_messages", ())
        return any(message in result.stderr for message in messages)

    def accept_port(self, port):
        """Take the port a job reported; return False if this server is not waiting for one.

        Called by the ``/cylc-batch/port`` API handler after it checked the token.
        """
        if self._port_future is None or self._port_future.done():
            return False
        self._port_future.set_result(port)
        return True

    def apply_workflow(self):
        """Open the form's workflow first, as cylc-local does. Called by ``start``."""
        if not hasattr(self, "_configured_default_url"):
            self._configured_default_url = self.default_url
        workflow = self.form_values.get("workflow")
        if workflow:
            self.default_url = f"/cylc/#/workspace/~{self.user.name}/{workflow}"
        else:
            self.default_url = self._configured_default_url

    async def start(self):
        if self.job_id:
            # NOTE: a hub restarted while a job was queued does not load this
            # spawner, so the job stays queued until this next start cancels it.
            # If it starts first, the hub rejects its port report and the job exits.
            self.log.warning("Cancelling leftover job %s of %s", self.job_id, self._log_name)
            await self.cancel_job()
        await self.cancel_uncancelled_jobs()

        self.apply_workflow()
        try:
            script = self.render_script()
        except ScriptValueError as error:
            raise BatchSpawnError(
                f"job script for {self._log_name} not rendered: {error}",
                "An option contains characters a job script cannot take. Change it and try again.",
            ) from error
        await self.write_ui_authorization()
        await self.write_token_file()

        self._port_future = asyncio.get_running_loop().create_future()
        self.submitted_at = self.clock()
        # Set first, so that stop() cancels a job submitted during a cancelled start on its host.
        self.job_host = self.submit_host
        # Shielded, so a start cancelled by the user still learns the job id and stop() cancels it.
        self._submission = asyncio.ensure_future(self.submit(script))
        self.job_id = await asyncio.shield(self._submission)
        self._save_state()
        self.log.info("Submitted job %s for %s", self.job_id, self._log_name)
        self._watch()

        port = await self.wait_for_port()
        self.port = port
        node = await self.wait_for_node()
        self.job_node = node
        return (self.node_address.format(node=node), port)

    async def wait_for_port(self):
        """Wait until the job reports its port; fail at once when the job ends first."""
        while not self._port_future.done():
            status = self.poller.status(self.job_id, self.submitted_at)
            if status != self.job_status:
                self.log.info("%s: %s", self._log_name, status.describe(self.job_id))
            self.job_status = status
            if status.state == DONE:
                tail = await self.output_tail()
                job_id = await self._end_job()
                raise BatchSpawnError(
                    f"job {job_id} of {self._log_name} ended before its server started "
                    f"({status.scheduler_state or status.reason}); output:\n{tail}",
                    f"The job {job_id} ended before the server started. "
                    f"Last lines of its output:\n{tail or '(no output)'}",
                )
            round_done = asyncio.ensure_future(self.poller.wait_for_round(self.batch_poll_interval * 2))
            await asyncio.wait({round_done, self._port_future}, return_when=asyncio.FIRST_COMPLETED)
            round_done.cancel()
        return self._port_future.result()

    async def wait_for_node(self):
        """Return the node the job runs on, waiting for a query that shows it running."""
        while True:
            status = self.poller.status(self.job_id, self.submitted_at)
            self.job_status = status
            if status.state == RUNNING and status.node:
                return status.node
            if status.state == DONE:
                job_id = await self._end_job()
                raise BatchSpawnError(
                    f"job {job_id} of {self._log_name} ended right after reporting its port",
                    f"The job {job_id} ended as its server started. Try again.",
                )
            await self.poller.wait_for_round(self.batch_poll_interval * 2)

    async def output_tail(self):
        """Return the last lines of the job's output file, or "" when it cannot be read."""
        if not self.output_tail_lines:
            return ""
        argv = ["tail", "-n", str(self.output_tail_lines), "--", self.output_path]
        try:
            result = await self._run(self.user.name, argv, "Reading the job output")
        except BatchSpawnError as error:
            self.log.warning("%s", error)
            return ""
        return result.stdout.rstrip()

    async def progress(self):
        """Report the job's queue state, reason and estimated start to the spawn page."""
        last = None
        while self._spawn_pending:
            status = self.job_status
            if self.job_id and status is not None:
                message = status.describe(self.job_id)
                if message != last:
                    percent = 30 if status.state == PENDING else 60
                    yield {"progress": percent, "message": message}
                    last = message
            await asyncio.sleep(0.5)

    # -- poll and stop ------------------------------------------------------------

    async def poll(self):
        """Return the job's state from the shared query: None while queued, running or unknown."""
        if not self.job_id:
            return 0
        # After a hub restart the first poll starts watching the re-adopted job.
        self._watch()
        status = self.poller.status(self.job_id, self.submitted_at)
        self.job_status = status
        if status.state == DONE:
            self.log.info(
                "%s: job %s ended outside the hub (%s)",
                self._log_name,
                self.job_id,
                status.scheduler_state or status.reason,
            )
            self._forget_job()
            return 1
        return None

    def _forget_job(self):
        """Stop watching a job that has ended, so that ``stop`` does not cancel it; return its id."""
        job_id = self.job_id
        self._unwatch()
        self.job_id = ""
        return job_id

    async def _end_job(self):
        """Cancel a job that left the queue before its server started, then forget it; return its id.

        A spawn that fails must not leave a job running without a hub record,
        and the scheduler's output may be stale, so the job is cancelled
        anyway: cancelling a job that has ended changes nothing.
        """
        result = await self._cancel(self.job_id, self.job_host)
        if result is not None:
            self.log.debug(
                "Cancel of ended job %s of %s returned %d", self.job_id, self._log_name, result.exit_status
            )
        return self._forget_job()

    def _watch(self):
        if self._watching != self.job_id:
            self._unwatch()
            self.poller.watch(self.job_id)
            self._watching = self.job_id

    def _unwatch(self):
        if self._watching:
            self.poller.unwatch(self._watching)
            self._watching = None

    async def cancel_job(self):
        """Cancel the job as the user; a job that is already gone is not an error.

        A job whose cancel could not reach the scheduler stays in
        ``uncancelled_jobs``, so that the next start cancels it.
        """
        job_id = self.job_id
        result = await self._cancel(job_id, self.job_host)
        if result is not None and result.exit_status == 0:
            self.log.info("Cancelled job %s of %s", job_id, self._log_name)
        elif result is not None:
            self.log.warning(
                "Cancelling job %s of %s returned %d: %s", job_id, self._log_name, result.exit_status, result.stderr.strip()
            )
        if result is None or self.scheduler_unreachable(result):
            self.log.error(
                "Job %s of %s may still be queued or running; the next start cancels it", job_id, self._log_name
            )
            entry = {"job_id": job_id, "job_host": self.job_host}
            self.uncancelled_jobs = [*self.uncancelled_jobs, entry][-MAX_UNCANCELLED_JOBS:]
        self._unwatch()
        self.job_id = ""

    async def _cancel(self, job_id, host):
        """Run the cancel command; return its result, or None when it could not run."""
        argv = self.scheduler.cancel_argv(job_id)
        try:
            return await self._run(self.user.name, argv, "Cancelling the job", host=host)
        except BatchSpawnError as error:
            self.log.error("%s", error)
            return None

    async def cancel_uncancelled_jobs(self):
        """Cancel the jobs that an earlier cancel could not; keep those the scheduler still cannot take.

        The cancels run at once, so that a scheduler that does not respond
        delays a start by one command timeout, not one per job.
        """
        entries = list(self.uncancelled_jobs)
        results = await asyncio.gather(*(self._cancel(entry["job_id"], entry["job_host"]) for entry in entries))

        remaining = []
        for entry, result in zip(entries, results):
            if result is None or self.scheduler_unreachable(result):
                remaining.append(entry)
                continue
            self.log.info(
                "Cancelled earlier job %s of %s (exit status %d)", entry["job_id"], self._log_name, result.exit_status
            )
        self.uncancelled_jobs = remaining

    async def stop(self, now=False):
        if self._submission is not None and not self._submission.done():
            # The user stopped while sbatch ran: wait for the id so the job is not left behind.
            try:
                self.job_id = await self._submission
            except Exception:
                pass
        if self._port_future is not None and not self._port_future.done():
            self._port_future.cancel()
        if self.job_id:
            await self.cancel_job()
        await self.remove_token_file()
        self.job_status = None

    async def remove_token_file(self):
        """Remove the token file of a job that never started, which would otherwise stay behind."""
        path = f"{self.job_directory}/{self.job_name}.token"
        try:
            await self._run(self.user.name, ["rm", "-f", "--", path], "Removing the token file")
        except BatchSpawnError as error:
            self.log.warning("%s", error)
