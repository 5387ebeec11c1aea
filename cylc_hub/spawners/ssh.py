"""cylc-ssh: start the Cylc UI Server on a login node over SSH, as the user's own account.

The spawner connects with asyncssh through the shared connection pool of
:mod:`cylc_hub.spawners.transport.ssh`, so starting, polling and stopping
use channels of one connection per (host, user, key). The launcher of
:mod:`cylc_hub.spawners.launcher` receives the hub token, the OAuth secret
and the UI authorization on standard input, never in a command line or a
file that others can read, and starts the server in its own process group.
"""

import asyncio
import json
import os
import random
import shlex
import time
from importlib import resources

from jupyterhub.spawner import Spawner
from sqlalchemy.orm import object_session
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Dict, Float, Integer, Unicode, default

from cylc_hub.spawners.authorization import UIAuthorizationMixin
from cylc_hub.spawners.form import OptionsFormMixin
from cylc_hub.spawners.launcher import BOOTSTRAP, LOG_NAME
from cylc_hub.spawners.local import DEFAULT_FORM_FIELDS
from cylc_hub.spawners.ssh_hosts import ANY_HOST, HostSelectionMixin, host_choices
from cylc_hub.spawners.transport import CommandError
from cylc_hub.spawners.transport.ssh import SSHTarget, shared_pool
from cylc_hub.spawners.ui_authorization import CONFIG_FILE_NAME, render_config

# Seconds between readiness checks while the server starts, doubled after each up to the maximum.
READY_CHECK_INTERVAL = 0.2
READY_CHECK_MAX_INTERVAL = 1.0

# Lines of the remote log shown to the user when the server exits while starting.
LOG_TAIL_LINES = 15

# Servers whose stop failed, kept in the state so that the next start stops them.
MAX_UNSTOPPED_SERVERS = 10


class SSHSpawnError(Exception):
    """A failed spawn, with the detail for the log in ``str()`` and the page's text in ``jupyterhub_message``."""

    def __init__(self, detail, user_message):
        super().__init__(detail)
        self.jupyterhub_message = user_message


class CylcSSHSpawner(UIAuthorizationMixin, HostSelectionMixin, OptionsFormMixin, Spawner):
    """Start ``cylc hubapp`` on a remote host over SSH and manage it through a pooled connection."""

    ssh_port = Integer(
        22, min=1, max=65535, help="SSH port of hosts given without ``:port`` in ``remote_hosts``."
    ).tag(config=True)

    ssh_keyfile = Unicode(
        "",
        help="""Private key file with which the hub logs in as the user, as a template.

        ``{username}`` becomes the user's name and a leading ``~`` the user's
        home directory on the hub host, as in ``~/.ssh/id_cylc_hub`` or
        ``/etc/cylc-hub/keys/{username}``. Empty: the hub account's default
        keys (``~/.ssh/id_*`` of the account running the hub). An OpenSSH
        certificate next to the key as ``KEY-cert.pub`` is used too.
        """,
    ).tag(config=True)

    ssh_keyfiles_by_host = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="""Key file templates per host name, used in place of ``ssh_keyfile`` for those hosts.""",
    ).tag(config=True)

    ssh_certificate = Unicode(
        "",
        help="""OpenSSH certificate file for the key, as a template like ``ssh_keyfile``.

        Empty: ``KEY-cert.pub`` when that file exists, else no certificate.
        """,
    ).tag(config=True)

    known_hosts = Unicode(
        "",
        help="""known_hosts file against which each host's SSH key is verified.

        Empty: ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts`` of the
        account running the hub. Checking cannot be turned off: a host with an
        unknown or changed key is rejected with a message naming the host.
        """,
    ).tag(config=True)

    connect_timeout = Float(
        10.0,
        min=0.1,
        help="Seconds to wait for an SSH connection to a host before trying the next.",
    ).tag(config=True)

    command_timeout = Float(
        30.0, min=0.1, help="Seconds to wait for one remote command (launch, poll, stop, load)."
    ).tag(config=True)

    prologue = Unicode(
        "",
        help="""Shell lines run on the remote host before the server starts, as in ``module load cylc``.

        Runs in the user's login shell of the SSH session; no secret is in its
        environment yet. Site text only: never build it from form values.
        """,
    ).tag(config=True)

    remote_python = Unicode(
        "python3",
        help="Python 3 interpreter on the remote host that runs the small launcher (standard library only).",
    ).tag(config=True)

    remote_ip = Unicode(
        "",
        help="""Address on which the remote server listens.

        Empty: ``127.0.0.1`` with ``tunnel``, else the host's name from
        ``remote_hosts``, which the proxy then connects to.
        """,
    ).tag(config=True)

    remote_state_dir = Unicode(
        "~/.cylc/hub",
        help="""Directory on the remote host, below which each server keeps its log and authorization.

        Each server gets the subdirectory ``SERVER_NAME`` (``default`` for the
        default server), readable by the user only; its log is ``uiserver.log``.
        """,
    ).tag(config=True)

    tunnel = Bool(
        False,
        help="""Forward a port on the hub host to the remote server, for proxies that cannot reach the hosts.

        The tunnel runs over the pooled SSH connection and is rebuilt when the
        hub restarts or the connection is reopened.
        """,
    ).tag(config=True)

    poll_failure_limit = Integer(
        3,
        min=1,
        help="""Consecutive failed polls (host unreachable, SSH failing) after which the server counts as stopped.

        Until then its state is unknown and the hub keeps it.
        """,
    ).tag(config=True)

    stop_grace_seconds = Float(
        5.0,
        min=0,
        help="Seconds between SIGTERM and SIGKILL to the server's process group when it stops.",
    ).tag(config=True)

    @default("cmd")
    def _default_cmd(self):
        return ["cylc", "hubapp"]

    @default("env_keep")
    def _default_env_keep(self):
        # The hub host's PATH and similar variables do not fit another host, so
        # the login environment of the SSH session and the prologue provide them.
        return []

    @default("form_fields")
    def _default_form_fields(self):
        host = {
            "name": "host",
            "type": "choice",
            "label": "Host",
            "help": "The login node on which your Cylc UI server runs.",
            "default": ANY_HOST,
            "choices": host_choices,
        }
        return [host] + DEFAULT_FORM_FIELDS

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.unstopped_servers = []
        self.clear_state()
        self._progress_events = []
        self._listener = None
        self._listener_generation = None

    # --- state ---------------------------------------------------------

    # State keys and the attributes that hold them while the server runs.
    _STATE_ATTRIBUTES = {
        "host": "host",
        "ssh_port": "ssh_port_in_use",
        "pid": "pid",
        "remote_ip": "remote_ip_in_use",
        "remote_port": "remote_port",
        "tunnel_port": "tunnel_port",
    }

    def load_state(self, state):
        super().load_state(state)
        for key, attribute in self._STATE_ATTRIBUTES.items():
            if key in state:
                setattr(self, attribute, state[key])
        self.unstopped_servers = list(state.get("unstopped_servers", []))

    def get_state(self):
        state = super().get_state()
        if self.pid:
            for key, attribute in self._STATE_ATTRIBUTES.items():
                state[key] = getattr(self, attribute)
        # Kept across clear_state, so that the next start stops these servers.
        if self.unstopped_servers:
            state["unstopped_servers"] = list(self.unstopped_servers)
        return state

    def _save_state(self):
        """Write the state now, so that a hub restarted before the server responds still records it."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            object_session(self.orm_spawner).commit()

    def clear_state(self):
        super().clear_state()
        self.host = None
        self.ssh_port_in_use = None
        self.pid = 0
        self.remote_ip_in_use = None
        self.remote_port = None
        self.tunnel_port = None
        self._poll_failures = 0

    # --- connections ---------------------------------------------------

    def _expand_template(self, template):
        path = template.format(username=self.user.name)
        if path.startswith("~/") or path == "~":
            path = f"~{self.user.name}" + path[1:]
        return os.path.expanduser(path)

    def transport_for(self, host, port):
        """Return the pooled transport that reaches ``host:port`` as this user."""
        key_template = self.ssh_keyfiles_by_host.get(host, self.ssh_keyfile)
        target = SSHTarget(
            host=host,
            port=port,
            username=self.user.name,
            client_key=self._expand_template(key_template) if key_template else "",
            certificate=self._expand_template(self.ssh_certificate) if self.ssh_certificate else "",
            known_hosts=os.path.expanduser(self.known_hosts) if self.known_hosts else "",
        )
        return shared_pool.get(target, connect_timeout=self.connect_timeout, logger=self.log)

    def _transport(self):
        return self.transport_for(self.host, self.ssh_port_in_use)

    # --- start ---------------------------------------------------------

    def _emit(self, progress, message):
        self._progress_events.append({"progress": progress, "message": message})

    async def progress(self):
        sent = 0
        while True:
            while sent < len(self._progress_events):
                yield self._progress_events[sent]
                sent += 1
            if not self._spawn_pending:
                return
            await asyncio.sleep(0.5)

    async def _ui_authorization(self):
        """Return the ``jupyter_server_config.py`` text with the decisions for this owner."""
        authorization, source = await self.decide_ui_authorization()
        self.log.info(
            "UI authorization for %s from %s: viewers %s",
            self._log_name,
            source,
            sorted(authorization.get(self.user.name, {})),
        )
        return render_config(authorization)

    def get_args(self):
        return self.log_level_args(super().get_args())

    def _launch_command(self):
        """Return the remote shell text: the prologue, then the launcher reading from stdin."""
        launcher = shlex.join([self.remote_python, "-c", BOOTSTRAP])
        return f"{self.prologue}\nexec {launcher}" if self.prologue.strip() else f"exec {launcher}"

    async def _launch_request(self, ip):
        server_dir = self.name or "default"
        if not hasattr(self, "_configured_default_url"):
            self._configured_default_url = self.default_url
        workflow = self.form_values.get("workflow")
        if workflow:
            self.default_url = f"/cylc/#/workspace/~{self.user.name}/{workflow}"
        else:
            self.default_url = self._configured_default_url
        return {
            "argv": self.cmd + self.get_args(),
            "env": self.get_env(),
            "ip": ip,
            "state_dir": f"{self.remote_state_dir.rstrip('/')}/{server_dir}",
            "files": {CONFIG_FILE_NAME: await self._ui_authorization()},
            "service_path": self.server.base_url if self.server else "/",
        }

    async def _connect_first(self, hosts):
        """Connect to the first host that accepts the connection and return ``(host, port, transport)``."""
        last_error = None
        for host, port in hosts:
            self._emit(10, f"Connecting to {host} over SSH")
            transport = self.transport_for(host, port)
            try:
                await transport.connect()
                return host, port, transport
            except CommandError as error:
                self.log.warning("Host %s:%s skipped for %s: %s", host, port, self._log_name, error)
                last_error = error
        raise SSHSpawnError(str(last_error), last_error.user_message)

    async def start(self):
        await self._stop_unstopped_servers()
        try:
            return await self._start()
        except CommandError as error:
            raise SSHSpawnError(str(error), error.user_message) from error

    async def _start(self):
        self._progress_events = []
        deadline = time.monotonic() + max(self.start_timeout - 10, self.start_timeout * 0.8)
        hosts = await self.candidate_hosts()
        if not hosts:
            raise SSHSpawnError(
                "remote_hosts is empty",
                "No host is configured for Cylc UI servers. Ask the site administrator.",
            )
        host, port, transport = await self._connect_first(hosts)

        self._emit(30, f"Starting the Cylc UI server on {host}")
        ip = self.remote_ip or ("127.0.0.1" if self.tunnel else host)
        request = await self._launch_request(ip)
        command = self._launch_command()
        self.log.debug(
            "Launching %s on %s: %s (request keys %s)",
            self._log_name,
            host,
            command,
            sorted(request),
        )
        stdin = json.dumps(_launcher_source()) + "\n" + json.dumps(request) + "\n"
        try:
            reply = await self._run_launcher(transport, host, command, stdin)
        except CommandError as error:
            # NOTE: a connection lost after the launcher started the server and
            # before its reply arrived leaves that server running without a record.
            raise SSHSpawnError(
                f"launching {self._log_name} on {host} failed: {error}",
                f"Starting the Cylc UI server on {host} failed because the SSH connection "
                "to it failed. Try again later, or choose another host.",
            ) from error

        self.host, self.ssh_port_in_use = host, port
        self.pid, self.remote_port, self.remote_ip_in_use = reply["pid"], reply["port"], ip
        self.log.info(
            "%s started on %s: pid %s, port %s", self._log_name, host, self.pid, self.remote_port
        )

        if self.tunnel:
            await self._open_tunnel()
        self._save_state()
        self._emit(60, "Waiting for the Cylc UI server to respond")
        url_host, url_port = self._connect_address()
        await self._wait_until_ready(transport, url_host, url_port, deadline)
        return url_host, url_port

    async def _run_launcher(self, transport, host, command, stdin):
        result = await transport.run_script(command, input=stdin, timeout=self.command_timeout)
        stdout = result.stdout
        lines = stdout.strip().splitlines()
        try:
            reply = json.loads(lines[-1]) if lines else {}
        except ValueError:
            reply = {}
        if not isinstance(reply, dict):
            reply = {}
        if "pid" in reply and "port" in reply:
            return reply

        stderr = result.stderr.strip()
        self.log.error(
            "Launcher for %s on %s exited with %s: stdout %r stderr %r",
            self._log_name,
            host,
            result.exit_status,
            stdout[-500:],
            stderr[-500:],
        )
        if reply.get("error") == "not-found":
            raise SSHSpawnError(
                reply.get("detail"),
                f"The command {self.cmd[0]!r} was not found on {host}. "
                "Ask the site administrator to install Cylc there or fix the prologue.",
            )
        if reply.get("error") == "not-executable":
            raise SSHSpawnError(
                reply.get("detail"),
                f"The command {self.cmd[0]!r} could not be run on {host}. "
                "Ask the site administrator to check its permissions.",
            )
        if result.exit_status == 127:
            raise SSHSpawnError(
                stderr,
                f"{self.remote_python!r} was not found on {host}. "
                "Ask the site administrator to check the prologue or remote_python.",
            )
        last_line = stderr.splitlines()[-1] if stderr else "no output"
        raise SSHSpawnError(
            f"launcher exit status {result.exit_status}: {stderr[-500:]}",
            f"Starting the server on {host} failed ({last_line}). Ask the site administrator.",
        )

    def _connect_address(self):
        if self.tunnel:
            return "127.0.0.1", self.tunnel_port
        return self.remote_ip_in_use, self.remote_port

    async def _open_tunnel(self):
        transport = self._transport()
        try:
            listener = await transport.forward_local_port(
                self.remote_ip_in_use, self.remote_port, self.tunnel_port or 0
            )
        except CommandError:
            if not self.tunnel_port:
                raise
            # The old local port is taken: take any, and get_url() tells the hub.
            listener = await transport.forward_local_port(self.remote_ip_in_use, self.remote_port)
        self._listener, self._listener_generation = listener, transport.generation
        self.tunnel_port = listener.get_port()
        self.log.info(
            "Tunnel for %s: 127.0.0.1:%s -> %s:%s",
            self._log_name,
            self.tunnel_port,
            self.host,
            self.remote_port,
        )

    async def _wait_until_ready(self, transport, host, port, deadline):
        remote_host = self.host
        url = f"http://{host}:{port}{self.server.base_url if self.server else '/'}api"
        client = AsyncHTTPClient()
        interval = READY_CHECK_INTERVAL
        ssh_error = None
        while True:
            if await _responds(client, url):
                return
            try:
                alive = await self._process_alive(transport)
                ssh_error = None
            except CommandError as error:
                # The server may still start and respond over HTTP, so a lost
                # SSH connection only makes its state unknown until the deadline.
                if ssh_error is None:
                    self.log.warning(
                        "Checking %s on %s failed while it starts, state unknown: %s",
                        self._log_name,
                        remote_host,
                        error,
                    )
                alive, ssh_error = True, error
            if not alive:
                tail = await self._log_tail(transport)
                self._forget_server()
                raise SSHSpawnError(
                    f"server exited while starting on {remote_host}; log tail:\n{tail}",
                    f"The Cylc UI server on {remote_host} exited while starting. The end of its log:\n{tail}",
                )
            if time.monotonic() > deadline:
                await self._fail_unresponsive(transport, remote_host, ssh_error)
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            interval = min(interval * 2, READY_CHECK_MAX_INTERVAL)

    async def _fail_unresponsive(self, transport, remote_host, ssh_error):
        """Stop a server that did not respond before the deadline and raise ``SSHSpawnError``."""
        if ssh_error is not None:
            await self.stop()
            raise SSHSpawnError(
                f"server on {remote_host} did not respond before the start timeout and "
                f"SSH failed: {ssh_error}",
                f"The Cylc UI server on {remote_host} did not respond within "
                f"{self.start_timeout:g} s, and the SSH connection to {remote_host} failed. "
                "Try again later, or choose another host.",
            )

        tail = await self._log_tail(transport)
        await self.stop()
        raise SSHSpawnError(
            f"server on {remote_host} did not respond before the start timeout; log tail:\n{tail}",
            f"The Cylc UI server on {remote_host} did not respond within {self.start_timeout:g} s. "
            "Try again, or ask the site administrator.",
        )

    async def _process_alive(self, transport):
        # "kill -SIGNAL -PGID" addresses the process group in bash and dash alike;
        # dash rejects "--" before it.
        result = await transport.run(
            ["kill", "-0", f"-{int(self.pid)}"], timeout=self.command_timeout
        )
        return result.exit_status == 0

    async def _log_tail(self, transport):
        path = f"{self.remote_state_dir.rstrip('/')}/{self.name or 'default'}/{LOG_NAME}"
        # "~" must stay unquoted for the remote shell to expand it.
        if path.startswith("~/"):
            quoted = "~/" + shlex.quote(path[2:])
        else:
            quoted = shlex.quote(path)
        result = await transport.run_script(
            f"tail -n {LOG_TAIL_LINES} {quoted}", timeout=self.command_timeout
        )
        return result.stdout.strip() or "(the log is empty)"

    def _forget_server(self):
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.clear_state()

    # --- poll, get_url and stop ----------------------------------------

    async def poll(self):
        if not self.pid or not self.host:
            return 0
        transport = self._transport()
        try:
            alive = await self._process_alive(transport)
            if alive and self.tunnel_port and self._listener_generation != transport.generation:
                await self._open_tunnel()
        except CommandError as error:
            self._poll_failures += 1
            if self._poll_failures > self.poll_failure_limit:
                # The hub polls again while it stops the server, and the error was logged already.
                return 1
            if self._poll_failures == self.poll_failure_limit:
                self.log.error(
                    "Polling %s failed %s times, counting it as stopped; "
                    "the next start stops process group %s on %s: %s",
                    self._log_name,
                    self._poll_failures,
                    self.pid,
                    self.host,
                    error,
                )
                self._record_unstopped()
                return 1
            self.log.warning(
                "Polling %s failed (%s of %s), state unknown: %s",
                self._log_name,
                self._poll_failures,
                self.poll_failure_limit,
                error,
            )
            return None
        self._poll_failures = 0
        return None if alive else 1

    async def get_url(self):
        # A hub restarted while the server started has no address for it yet but this state.
        if self.server and self.pid:
            host, port = self._connect_address()
            host = f"[{host}]" if ":" in host else host
            return f"http://{host}:{port}{self.server.base_url}"
        return await super().get_url()

    async def stop(self, now=False):
        if not self.pid or not self.host:
            self._forget_server()
            return
        pgid = int(self.pid)
        try:
            result = await self._stop_process_group(
                self.host, self.ssh_port_in_use, pgid, 0 if now else self.stop_grace_seconds
            )
            self.log.info(
                "%s stopped on %s (process group %s, exit status %s %s)",
                self._log_name,
                self.host,
                pgid,
                result.exit_status,
                result.stderr.strip()[-200:],
            )
        except CommandError as error:
            self.log.error(
                "Stopping %s on %s failed; process group %s may still run, "
                "and the next start stops it: %s",
                self._log_name,
                self.host,
                pgid,
                error,
            )
            self._record_unstopped()
        self._forget_server()

    async def _stop_process_group(self, host, port, pgid, grace):
        """Send SIGTERM to process group ``pgid`` on ``host``, then SIGKILL after ``grace`` s."""
        script = (
            f"kill -TERM -{int(pgid)} 2>/dev/null || exit 0\n"
            f"end=$(( $(date +%s) + {int(grace + 0.999)} ))\n"
            f'while [ "$(date +%s)" -lt "$end" ]; do kill -0 -{int(pgid)} 2>/dev/null || exit 0; sleep 0.2; done\n'
            f"kill -KILL -{int(pgid)} 2>/dev/null\nexit 0\n"
        )
        return await self.transport_for(host, port).run(
            ["sh", "-c", script], timeout=self.command_timeout + grace
        )

    def _record_unstopped(self):
        """Keep the current server in the state as one to stop at the next start."""
        entry = {"host": self.host, "ssh_port": self.ssh_port_in_use, "pid": int(self.pid)}
        if entry not in self.unstopped_servers:
            # NOTE: a process group id recorded long ago may belong to another process of
            # the user by now. Only the newest entries are kept, and the stop does not
            # check the command.
            self.unstopped_servers = [*self.unstopped_servers, entry][-MAX_UNSTOPPED_SERVERS:]

    async def _stop_unstopped_servers(self):
        """Stop the servers that an earlier stop or poll could not reach; keep those still unreachable.

        The stops run at once, so that unreachable hosts delay a start by one
        connection timeout, not one per server.
        """
        entries = list(self.unstopped_servers)
        stopped = await asyncio.gather(*(self._stop_unstopped(entry) for entry in entries))
        self.unstopped_servers = [entry for entry, done in zip(entries, stopped) if not done]

    async def _stop_unstopped(self, entry):
        """Stop one earlier server; return whether the stop command ran."""
        host, port, pgid = entry["host"], entry["ssh_port"], entry["pid"]
        try:
            await self._stop_process_group(host, port, pgid, self.stop_grace_seconds)
        except CommandError as error:
            self.log.warning(
                "Stopping an earlier server of %s on %s failed again; process group %s "
                "may still run: %s",
                self._log_name,
                host,
                pgid,
                error,
            )
            return False
        self.log.info(
            "Stopped an earlier server of %s on %s (process group %s)", self._log_name, host, pgid
        )
        return True


async def _responds(client, url):
    """Return whether an HTTP server responds at ``url``, with any status."""
    try:
        response = await client.fetch(HTTPRequest(url, request_timeout=5), raise_error=False)
    except (OSError, HTTPClientError):
        return False
    return response.code != 599


def _launcher_source():
    return resources.files("cylc_hub.spawners").joinpath("launcher.py").read_text()
