"""cylc-slurm: the Cylc UI Server as a Slurm job, polled with one squeue for all jobs."""

from __future__ import annotations

import re

from traitlets import List, Unicode, default

from cylc_hub.spawners.batch import CylcBatchSpawner
from cylc_hub.spawners.batch_jobs import DONE, PENDING, RUNNING, UNKNOWN, JobStatus, QueryFailed

# squeue's long state names (squeue --format=%T, Slurm 22.05), mapped onto the
# hub's states. SUSPENDED and STOPPED jobs still hold their node, so they count
# as running; COMPLETING is a job whose processes are ending.
SLURM_STATES = {
    "PENDING": PENDING,
    "CONFIGURING": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING,
    "RESV_DEL_HOLD": PENDING,
    "RESIZING": RUNNING,
    "RUNNING": RUNNING,
    "SIGNALING": RUNNING,
    "STAGE_OUT": RUNNING,
    "SUSPENDED": RUNNING,
    "STOPPED": RUNNING,
    "COMPLETING": DONE,
    "COMPLETED": DONE,
    "CANCELLED": DONE,
    "FAILED": DONE,
    "TIMEOUT": DONE,
    "NODE_FAIL": DONE,
    "PREEMPTED": DONE,
    "BOOT_FAIL": DONE,
    "DEADLINE": DONE,
    "OUT_OF_MEMORY": DONE,
    "REVOKED": DONE,
    "SPECIAL_EXIT": DONE,
}

# One line per job: id, state, start time, nodes, reason. The reason comes last
# because it is the only field that may hold free text.
SQUEUE_FORMAT = "%i|%T|%S|%N|%r"

# "12345" or, on a multi-cluster site, "12345;cluster".
PARSABLE_JOB_ID = re.compile(r"\s*(\d+)(?:;([A-Za-z0-9_.\-]+))?\s*")

# squeue's error when the one job it was asked about no longer exists.
INVALID_JOB_ID = "Invalid job id specified"

# Errors of Slurm 22.05's commands when slurmctld is down or does not respond. sbatch
# and scancel print the first when slurmctld is stopped on the test cluster.
CONTROLLER_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Slurm controller not responding",
    "Socket timed out on send/recv operation",
)


class SlurmScheduler:
    """Commands and output parsing for Slurm (checked against Slurm 22.05)."""

    environment_names = ("SLURM_CONF",)
    unreachable_messages = CONTROLLER_UNREACHABLE

    def __init__(self, cluster=""):
        self.cluster = cluster
        self.key = cluster

    def _cluster_args(self):
        return [f"--clusters={self.cluster}"] if self.cluster else []

    def submit_argv(self):
        return ["sbatch", "--parsable", *self._cluster_args()]

    def parse_job_id(self, stdout):
        """Return the job id from ``sbatch --parsable`` output, ignoring other lines.

        Site submit plugins may print lines before or after the id, and a
        multi-cluster site prints ``ID;CLUSTER``.
        """
        for line in reversed(stdout.splitlines()):
            match = PARSABLE_JOB_ID.fullmatch(line)
            if match:
                return match.group(1)
        raise ValueError(f"no job id in sbatch output {stdout[:200]!r}")

    def query_argv(self, job_ids):
        return [
            "squeue",
            "--noheader",
            "--states=all",
            f"--jobs={','.join(job_ids)}",
            f"--format={SQUEUE_FORMAT}",
            *self._cluster_args(),
        ]

    def parse_query(self, result, job_ids):
        """Return ``{job_id: JobStatus}`` for the jobs squeue listed; raise ``QueryFailed`` otherwise."""
        if result.exit_status != 0:
            if INVALID_JOB_ID in result.stderr:
                # Not a failure: the controller reports that the queried job no longer exists.
                return {}
            raise QueryFailed(
                f"squeue exited with {result.exit_status}: {result.stderr.strip()[:500]}"
            )

        statuses = {}
        for line in result.stdout.splitlines():
            fields = line.strip().split("|", 4)
            if len(fields) != 5:
                # "CLUSTER: name" headers of --clusters, and anything else unexpected.
                continue
            job_id, state, start_time, node, reason = fields
            statuses[job_id] = self.status(state, start_time, node, reason)
        return statuses

    @staticmethod
    def status(state, start_time, node, reason):
        # "PREEMPTED by ..." style extras follow a space in some versions.
        state = state.split()[0] if state.strip() else ""
        mapped = SLURM_STATES.get(state, UNKNOWN)
        if start_time in ("N/A", "Unknown", "None") or mapped != PENDING:
            start_time = ""
        if reason == "None" or mapped == RUNNING:
            reason = ""
        node = "" if node in ("", "(null)") else node.split(",")[0]
        return JobStatus(mapped, state, reason, start_time.replace("T", " "), node)

    def cancel_argv(self, job_id):
        return ["scancel", *self._cluster_args(), job_id]


class CylcSlurmSpawner(CylcBatchSpawner):
    """Start ``cylc hubapp`` as a Slurm job submitted with ``sbatch`` as the user."""

    cluster = Unicode(
        "",
        help="""Slurm cluster for every command (``--clusters``) on a multi-cluster site; empty for the default.""",
    ).tag(config=True)

    partitions = List(
        Unicode(),
        help="""Partitions offered in the form; the first is the default. Empty: no partition field.""",
    ).tag(config=True)

    @default("job_template")
    def _default_job_template(self):
        return "slurm.sh.j2"

    @default("form_fields")
    def _default_form_fields(self):
        return self.batch_form_fields("partition", "partition", self.partitions)

    def make_scheduler(self):
        return SlurmScheduler(self.cluster)

    def template_values(self):
        values = self.form_values
        return {
            "partition": values.get("partition", ""),
            "walltime_minutes": values.get("walltime", 60),
            "memory_mb": values.get("memory", 0),
            "cluster": self.cluster,
        }
