"""Run a real one-node Slurm cluster (munged, slurmctld, slurmd) from a temporary directory.

Everything the daemons write (config, state, spool, logs, pid files and
munge's socket) lives in one directory under /tmp. The daemons run in the
foreground as children of this process and are stopped by their PIDs. The
node has one CPU, so a second job waits in the queue with reason Resources.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hubharness import free_port, wait_for
from secretscan import keep_logs

MUNGE_KEY = Path("/etc/munge/munge.key")
PARTITION = "debug"

SLURM_CONF = """\
ClusterName=cylchub
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={controller_port}
SlurmdPort={node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Backfill every second, so a queued job gets an estimated start time quickly.
SchedulerParameters=bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=3
MessageTimeout=5
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs=1 RealMemory=1000 State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Slurm:
    """A running one-node cluster; ``env`` makes Slurm commands use it."""

    root: Path
    conf: Path
    env: dict
    processes: dict = field(default_factory=dict)

    def run(self, *argv, check=True):
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def log_tail(self, name, lines=30):
        path = self.root / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start_controller(self, clear_state=False):
        argv = ["/usr/sbin/slurmctld", "-D", "-f", str(self.conf)]
        if clear_state:
            argv.append("-c")
        self._start("slurmctld", argv)
        wait_for(lambda: self.run("scontrol", "ping", check=False).stdout.count("UP"), 30, message="slurmctld")

    def stop_controller(self):
        self._stop("slurmctld")

    def _start(self, name, argv, **kwargs):
        log = open(self.root / f"{name}.out", "ab")
        self.processes[name] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        log.close()

    def _stop(self, name, timeout=20):
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def node_idle(self):
        text = self.run("sinfo", "--noheader", "--format=%t", check=False).stdout
        return text.strip() in ("idle", "mix", "alloc")

    def queue(self):
        """Return ``{job_id: state}`` of every job in the controller's memory."""
        text = self.run("squeue", "--noheader", "--states=all", "--format=%i %T").stdout
        return dict(line.split() for line in text.splitlines() if line.strip())

    def cancel_all(self):
        self.run("scancel", "--partition", PARTITION, check=False)

    def stop(self):
        """Stop every job and daemon this harness started, by PID."""
        if "slurmctld" in self.processes:
            self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            self._stop(name)


def _ensure_munge_key():
    if MUNGE_KEY.exists():
        return
    munge = pwd.getpwnam("munge")
    MUNGE_KEY.parent.mkdir(mode=0o700, exist_ok=True)
    os.chown(MUNGE_KEY.parent, munge.pw_uid, munge.pw_gid)
    descriptor = os.open(MUNGE_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key:
        key.write(secrets.token_bytes(128))
    os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)


def start_slurm():
    """Start munged, slurmctld and slurmd; return when the node is idle."""
    _ensure_munge_key()
    root = Path(tempfile.mkdtemp(prefix="cylc-hub-slurm-"))
    root.chmod(0o755)
    munge = pwd.getpwnam("munge")
    munge_dir = root / "munge"
    munge_dir.mkdir(mode=0o755)
    os.chown(munge_dir, munge.pw_uid, munge.pw_gid)
    for name in ("state", "spool"):
        (root / name).mkdir(mode=0o755)

    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=socket.gethostname().split(".")[0],
            controller_port=free_port(),
            node_port=free_port(),
            munge_socket=munge_dir / "munge.socket",
            root=root,
            partition=PARTITION,
        )
    )
    conf.chmod(0o644)
    env = dict(os.environ, SLURM_CONF=str(conf))
    slurm = Slurm(root, conf, env)

    try:
        slurm._start(
            "munged",
            [
                "/usr/sbin/munged",
                "--foreground",
                f"--socket={munge_dir / 'munge.socket'}",
                f"--pid-file={munge_dir / 'munged.pid'}",
                f"--log-file={munge_dir / 'munged.log'}",
                f"--seed-file={munge_dir / 'munged.seed'}",
                f"--key-file={MUNGE_KEY}",
            ],
            user=munge.pw_uid,
            group=munge.pw_gid,
            extra_groups=[],
        )
        wait_for(lambda: (munge_dir / "munge.socket").exists(), 20, message="munged's socket")
        slurm.start_controller(clear_state=True)
        slurm._start("slurmd", ["/usr/sbin/slurmd", "-D", "-f", str(conf)])
        wait_for(slurm.node_idle, 30, message="the Slurm node to be idle")
    except BaseException:
        print(slurm.log_tail("slurmctld"), slurm.log_tail("slurmd"), sep="\n")
        slurm.stop()
        raise
    return slurm


def remove_slurm(slurm):
    slurm.stop()
    time.sleep(0.5)
    keep_logs(slurm.root)
    shutil.rmtree(slurm.root, ignore_errors=True)
