"""cylc-pbs: the Cylc UI Server as a PBS Pro job, polled with one qstat for all jobs.

The commands and output follow PBS Pro / OpenPBS 19.1 and later, whose
``qstat -f -F json -x`` prints every listed job as JSON, finished jobs
included. Torque's qstat has no JSON output and is not supported.
"""

from __future__ import annotations

import json
import re

from traitlets import List, Unicode, default

from cylc_hub.spawners.batch import CylcBatchSpawner
from cylc_hub.spawners.batch_jobs import DONE, PENDING, RUNNING, UNKNOWN, JobStatus, QueryFailed

# PBS Pro job_state letters. S (suspended) and U (suspended by keyboard use)
# still hold their host; E is a job ending, F and X are finished jobs and subjobs.
PBS_STATES = {
    "Q": PENDING,
    "H": PENDING,
    "W": PENDING,
    "T": PENDING,
    "R": RUNNING,
    "B": RUNNING,
    "S": RUNNING,
    "U": RUNNING,
    "E": DONE,
    "F": DONE,
    "X": DONE,
}

# "1234.server" (the server name is optional on the command line).
PBS_JOB_ID = re.compile(r"\s*(\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.\-]+)?)\s*")
UNKNOWN_JOB = re.compile(r"^qstat: Unknown Job Id (\S+)\s*$")


class PBSScheduler:
    """Commands and output parsing for PBS Pro / OpenPBS."""

    environment_names = ("PBS_CONF_FILE", "PBS_SERVER")
    key = ""
    # Errors of the PBS Pro client commands when the server cannot be reached.
    # NOTE: not checked against a real PBS server; the test stand-ins never print them.
    unreachable_messages = ("cannot connect to server", "Connection refused")

    def submit_argv(self):
        return ["qsub"]

    def parse_job_id(self, stdout):
        """Return the job id from qsub's output, ignoring lines that are not an id."""
        for line in reversed(stdout.splitlines()):
            match = PBS_JOB_ID.fullmatch(line)
            if match:
                return match.group(1)
        raise ValueError(f"no job id in qsub output {stdout[:200]!r}")

    def query_argv(self, job_ids):
        return ["qstat", "-f", "-F", "json", "-x", *job_ids]

    def parse_query(self, result, job_ids):
        """Return ``{job_id: JobStatus}``; raise ``QueryFailed`` unless every error is an unknown job."""
        other_errors = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and not UNKNOWN_JOB.match(line)
        ]
        if result.exit_status != 0 and (other_errors or not result.stderr.strip()):
            raise QueryFailed(
                f"qstat exited with {result.exit_status}: {result.stderr.strip()[:500]}"
            )

        if not result.stdout.strip():
            return {}
        try:
            jobs = json.loads(result.stdout).get("Jobs", {})
        except (json.JSONDecodeError, AttributeError) as error:
            raise QueryFailed(f"qstat printed invalid JSON: {error}") from None

        statuses = {}
        for full_id, attributes in jobs.items():
            status = self.status(attributes)
            statuses[full_id] = status
            # qstat prints "123.server" even when asked for "123".
            statuses.setdefault(full_id.split(".", 1)[0], status)
        return statuses

    @staticmethod
    def status(attributes):
        letter = attributes.get("job_state", "")
        mapped = PBS_STATES.get(letter, UNKNOWN)
        reason = attributes.get("comment", "") if mapped == PENDING else ""
        start_time = ""
        if mapped == PENDING:
            start_time = attributes.get("estimated", {}).get("start_time", "")
        node = ""
        if mapped == RUNNING:
            node = attributes.get("exec_host", "").split("/", 1)[0].split("+", 1)[0]
        return JobStatus(mapped, letter, reason.strip(), start_time, node)

    def cancel_argv(self, job_id):
        return ["qdel", job_id]


class CylcPBSSpawner(CylcBatchSpawner):
    """Start ``cylc hubapp`` as a PBS Pro job submitted with ``qsub`` as the user."""

    queues = List(
        Unicode(),
        help="""Queues offered in the form; the first is the default. Empty: no queue field.""",
    ).tag(config=True)

    @default("job_template")
    def _default_job_template(self):
        return "pbs.sh.j2"

    @default("form_fields")
    def _default_form_fields(self):
        return self.batch_form_fields("queue", "queue", self.queues)

    def make_scheduler(self):
        return PBSScheduler()

    def template_values(self):
        values = self.form_values
        minutes = values.get("walltime", 60)
        return {
            "queue": values.get("queue", ""),
            "walltime_hms": f"{minutes // 60:02d}:{minutes % 60:02d}:00",
            "memory_mb": values.get("memory", 0),
        }
