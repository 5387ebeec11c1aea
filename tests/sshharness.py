"""Run real OpenSSH servers on loopback addresses, each with its own config and host key.

The hub's key pair, the authorized keys of the test users and a known_hosts
file live in one directory below ``/var/lib/cylc-hub``: sshd's StrictModes
rejects key files below a world-writable directory such as ``/tmp``. The
users' own ``~/.ssh`` stays untouched because sshd reads
``AUTHORIZED_DIR/USER`` instead.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from hubharness import USERS, free_port, wait_for
from secretscan import keep_logs

SSHD = "/usr/sbin/sshd"
STATE_ROOT = Path("/var/lib/cylc-hub/ssh-tests")


def keygen(path, comment):
    """Write an ed25519 key pair without passphrase and return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    return Path(f"{path}.pub").read_text().strip()


def _answers(address, port):
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class SSHHost:
    """One sshd process listening on ``address:port``."""

    address: str
    port: int
    directory: Path
    host_public_key: str
    environment: dict = field(default_factory=dict)
    process: subprocess.Popen = field(default=None, repr=False)

    @property
    def entry(self):
        """The ``host:port`` form that ``remote_hosts`` takes."""
        return f"{self.address}:{self.port}"

    @property
    def log_path(self):
        return self.directory / "sshd.log"

    def write_config(self, authorized_dir, user_ca):
        lines = [
            f"Port {self.port}",
            f"TrustedUserCAKeys {user_ca}",
            f"ListenAddress {self.address}",
            f"HostKey {self.directory / 'host_key'}",
            f"PidFile {self.directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_dir}/%u",
            "UsePAM no",
            "StrictModes yes",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "AllowTcpForwarding yes",
            "PrintMotd no",
            "LogLevel VERBOSE",
            f"AllowUsers {' '.join(USERS)}",
        ]
        lines += [f"SetEnv {name}={value}" for name, value in self.environment.items()]
        path = self.directory / "sshd_config"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self):
        config = self.directory / "sshd_config"
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(
            lambda: self.process.poll() is None and _answers(self.address, self.port),
            20,
            message=f"sshd on {self.entry}",
        )

    def stop(self):
        """Stop the listener and every connection it forked, each by its PID."""
        if self.process is None or self.process.poll() is not None:
            return
        children = _descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _descendants(pid):
    """Return the PIDs of every live process below ``pid``, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name in brackets may contain spaces; the parent PID follows it.
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


@dataclass
class SSHSite:
    """Two or more sshd hosts, the hub's keys and the known_hosts files that name them."""

    directory: Path
    hosts: list
    client_key: Path
    wrong_key: Path
    # A key that no authorized_keys file lists, and its OpenSSH certificate
    # signed by the user CA that every host trusts.
    certified_key: Path
    certificate: Path
    known_hosts: Path
    changed_known_hosts: Path

    def env(self):
        """Environment variables that ``tests/configs/ssh_config.py`` reads."""
        return {
            "CYLC_HUB_SSH_HOSTS": ",".join(host.entry for host in self.hosts),
            "CYLC_HUB_SSH_KEY": str(self.client_key),
            "CYLC_HUB_SSH_KNOWN_HOSTS": str(self.known_hosts),
        }

    def stop(self):
        for host in self.hosts:
            host.stop()


def start_site(loads=(None, None), addresses=("127.0.0.1", "127.0.0.2")):
    """Start one sshd per address; ``loads`` sets ``CYLC_HUB_TEST_LOAD`` in each host's sessions."""
    STATE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    STATE_ROOT.chmod(0o755)
    # sshd needs its privilege separation directory, which Debian creates only at boot.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="site-", dir=STATE_ROOT))
    directory.chmod(0o755)

    client_key = directory / "hub_key"
    public_key = keygen(client_key, "cylc-hub-test")
    wrong_key = directory / "wrong_key"
    keygen(wrong_key, "cylc-hub-test-unauthorized")

    user_ca = directory / "user_ca"
    keygen(user_ca, "cylc-hub-test-user-ca")
    certified_key = directory / "certified_key"
    keygen(certified_key, "cylc-hub-test-certified")
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-s",
            str(user_ca),
            "-I",
            "cylc-hub-test",
            "-n",
            ",".join(USERS),
            "-V",
            "-5m:+1d",
            f"{certified_key}.pub",
        ],
        check=True,
    )
    # Under another name, so that asyncssh does not load it beside the key by itself.
    certificate = directory / "user_certificate.pub"
    Path(f"{certified_key}-cert.pub").rename(certificate)

    authorized_dir = directory / "authorized"
    authorized_dir.mkdir(mode=0o755)
    for user in USERS:
        path = authorized_dir / user
        path.write_text(public_key + "\n")
        path.chmod(0o644)

    hosts = []
    known, changed = [], []
    for index, address in enumerate(addresses):
        host_dir = directory / f"host{index + 1}"
        host_dir.mkdir(mode=0o755)
        host_public = keygen(host_dir / "host_key", f"host{index + 1}")
        other_public = keygen(host_dir / "other_host_key", f"host{index + 1}-changed")
        load = loads[index] if index < len(loads) else None
        host = SSHHost(
            address,
            free_port(),
            host_dir,
            host_public,
            environment={"CYLC_HUB_TEST_LOAD": load} if load is not None else {},
        )
        host.write_config(authorized_dir, f"{user_ca}.pub")
        key_type, key_data = host_public.split()[:2]
        other_type, other_data = other_public.split()[:2]
        known.append(f"[{address}]:{host.port} {key_type} {key_data}")
        changed.append(f"[{address}]:{host.port} {other_type} {other_data}")
        hosts.append(host)

    known_hosts = directory / "known_hosts"
    known_hosts.write_text("\n".join(known) + "\n")
    changed_known_hosts = directory / "changed_known_hosts"
    changed_known_hosts.write_text("\n".join(changed) + "\n")

    site = SSHSite(
        directory,
        hosts,
        client_key,
        wrong_key,
        certified_key,
        certificate,
        known_hosts,
        changed_known_hosts,
    )
    try:
        for host in hosts:
            host.start()
    except BaseException:
        site.stop()
        raise
    return site


def remove_site(site):
    site.stop()
    keep_logs(site.directory)
    shutil.rmtree(site.directory, ignore_errors=True)


def processes_of(user):
    """Return ``(pid, pgid, args)`` of every process of ``user``, from ps."""
    output = subprocess.run(
        ["ps", "-o", "pid=,pgid=,args=", "-u", user], capture_output=True, text=True
    ).stdout
    rows = []
    for line in output.splitlines():
        pid, pgid, args = (
            line.split(None, 2) if len(line.split(None, 2)) == 3 else (*line.split(), "")
        )
        rows.append((int(pid), int(pgid), args))
    return rows


def wait_gone(pgid, timeout=30):
    """Wait until no process is left in process group ``pgid``."""

    def gone():
        result = subprocess.run(
            ["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True
        )
        return not result.stdout.strip()

    wait_for(gone, timeout, message=f"process group {pgid} to end")
    return True


def process_environ(pid):
    """Return the environment of process ``pid`` (readable by root and its owner only)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def server_processes(hub, user):
    """Return ``(pid, pgid, environ)`` of ``user``'s hub-started UI servers that talk to ``hub``.

    Other hubs on this machine may run servers for the same users, so a
    process counts only if its ``JUPYTERHUB_API_URL`` has this hub's API port.
    """
    api_port = process_environ(hub.process.pid)["CYLC_HUB_API_PORT"]
    found = []
    for pid, pgid, args in processes_of(user):
        if "hubapp" not in args or pid != pgid:
            continue
        try:
            environ = process_environ(pid)
        except OSError:
            continue
        if f":{api_port}/" in environ.get("JUPYTERHUB_API_URL", ""):
            found.append((pid, pgid, environ))
    return found


def restart_hub(hub):
    """Stop the hub and start it again with the same command, environment and database.

    With ``cleanup_servers = False`` the UI servers keep running meanwhile.
    """
    from hubharness import Hub, stop_hub

    environ = process_environ(hub.process.pid)
    argv = Path(f"/proc/{hub.process.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    stop_hub(hub)

    log_path = hub.state_dir / f"hub-restarted-{int(time.time() * 1000)}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=hub.state_dir,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    restarted = Hub(hub.url, hub.state_dir, hub.policy_path, log_path, hub.password, process)
    wait_for(
        lambda: "cylc-access listening on" in restarted.log_text() or process.poll() is not None,
        60,
        message="the restarted hub",
    )
    if process.poll() is not None:
        raise RuntimeError(f"the restarted hub exited:\n{restarted.log_tail()}")

    def login_page_served():
        try:
            return requests.get(f"{hub.url}/hub/login", timeout=5).ok
        except requests.ConnectionError:
            return False

    # The new proxy routes to the hub only after the hub has checked its routes.
    wait_for(login_page_served, 60, message="the restarted hub's login page")
    return restarted


def spawn_failure(hub, session, user, options=None):
    """Request ``user``'s server, expect the spawn to fail, return ``(message, progress events)``."""
    import json

    # Without user_options the hub would reuse the last spawn's options.
    response = hub.api(
        session, "POST", f"/users/{user}/server", json=options or {"user_options": {}}
    )
    if response.status_code >= 400:
        return response.json().get("message", response.text), []
    # JupyterHub 6.1 returns 201 or 202 for a spawn still pending after slow_spawn_timeout.
    assert response.status_code in (201, 202), response.text

    events = []
    with hub.api(session, "GET", f"/users/{user}/server/progress", stream=True) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if event.get("failed") or event.get("ready"):
                    break
    assert events and events[-1].get("failed"), f"no failure event: {events}\n{hub.log_tail(40)}"
    return events[-1]["message"], events


def readable_files_containing(secret, roots):
    """Return files below ``roots`` that every user may read and that contain ``secret``."""
    needle = secret.encode()
    found = []
    for root in roots:
        if not os.stat(root).st_mode & 0o001:
            continue
        for directory, subdirectories, files in os.walk(root):
            # A directory that others cannot enter hides what is in it.
            subdirectories[:] = [
                name
                for name in subdirectories
                if os.stat(os.path.join(directory, name), follow_symlinks=False).st_mode & 0o001
            ]
            for name in files:
                path = os.path.join(directory, name)
                try:
                    status = os.stat(path, follow_symlinks=False)
                except OSError:
                    continue
                if not (status.st_mode & 0o004) or status.st_size > 5_000_000:
                    continue
                if not os.path.isfile(path):
                    continue
                try:
                    if needle in Path(path).read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found
