#!/usr/bin/python3
"""Stand-in for PBS Pro's qsub, qstat and qdel, for tests on machines without PBS.

THIS IS A STAND-IN, NOT PBS. It keeps each job as a JSON file in a spool
directory, runs the job script at once with bash as the submitting user,
and prints what PBS Pro 2022 prints for the cases the tests need:

- qsub: ``ID.SERVER`` on stdout; ``qsub: Unknown queue`` (exit 170) for a
  queue other than those in ``PBS_STANDIN_QUEUES``.
- qstat -f -F json -x IDS: the JSON document with job_state Q (queued,
  while ``hold`` exists in the spool, with PBS's "Not Running" comment and
  an estimated start), R (running) or F (finished, with Exit_status), and
  ``qstat: Unknown Job Id ID`` on stderr (exit 153) for ids it never saw.
  ``qstat`` fails like an unreachable server while ``down`` exists in the spool.
- qdel ID: kills the job's process group and marks it finished.

The spool directory and queues come from the file named by PBS_CONF_FILE,
as real PBS reads its server settings from there.
"""

import json
import os
import signal
import subprocess
import sys
import time

SERVER = "standin-server"


def settings():
    values = {}
    with open(os.environ["PBS_CONF_FILE"]) as conf:
        for line in conf:
            name, _, value = line.strip().partition("=")
            values[name] = value
    return values


def spool():
    return settings()["PBS_STANDIN_SPOOL"]


def job_path(job_id):
    return os.path.join(spool(), f"{job_id.split('.')[0]}.json")


def load(job_id):
    with open(job_path(job_id)) as file:
        return json.load(file)


def save(job):
    path = job_path(job["id"])
    with open(path + ".tmp", "w") as file:
        json.dump(job, file)
    os.replace(path + ".tmp", path)


def next_id():
    counter = os.path.join(spool(), "counter")
    # Each submitter appends one byte; the file length is the id.
    with open(counter, "a") as file:
        file.write("x")
    return os.path.getsize(counter)


def directives(script, flag):
    found = []
    for line in script.splitlines():
        if line.startswith("#PBS " + flag + " "):
            found.append(line.split(" ", 2)[2])
    return found


def qsub(argv):
    script = sys.stdin.read()
    queues = settings().get("PBS_STANDIN_QUEUES", "workq").split(",")
    queue = (directives(script, "-q") or [queues[0]])[0]
    if queue not in queues:
        print("qsub: Unknown queue", file=sys.stderr)
        return 170

    number = next_id()
    job = {
        "id": f"{number}.{SERVER}",
        "name": (directives(script, "-N") or ["STDIN"])[0],
        "queue": queue,
        "owner": os.environ.get("USER", "root"),
        "output": (directives(script, "-o") or [f"STDIN.o{number}"])[0],
        "state": "Q",
        "pid": 0,
    }
    save(job)
    script_path = os.path.join(spool(), f"{number}.sh")
    with open(script_path, "w") as file:
        file.write(script)

    # The runner waits while the spool's "hold" file exists, as a full queue would.
    runner = (
        'while [ -e "$1/hold" ]; do sleep 0.5; done; '
        'python3 "$2" _start "$3"; bash "$4" > "$5" 2>&1; python3 "$2" _finish "$3" $?'
    )
    output = os.path.join(os.path.expanduser("~"), job["output"])
    subprocess.Popen(
        ["sh", "-c", runner, "sh", spool(), __file__, job["id"], script_path, output],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=os.path.expanduser("~"),
    )
    print(job["id"])
    return 0


def attributes(job):
    base = {
        "Job_Name": job["name"],
        "Job_Owner": f"{job['owner']}@{SERVER}",
        "job_state": job["state"],
        "queue": job["queue"],
        "server": SERVER,
        "Output_Path": f"{SERVER}:{job['output']}",
    }
    if job["state"] == "Q":
        base["comment"] = "Not Running: Insufficient amount of resource: ncpus "
        base["estimated"] = {"start_time": "Fri Dec  4 23:00:00 2026", "exec_vnode": "(localhost:ncpus=1)"}
    if job["state"] == "R":
        base["exec_host"] = "localhost/0"
        base["comment"] = "Job run at Fri Dec 04 at 20:00 on (localhost:ncpus=1)"
    if job["state"] == "F":
        base["Exit_status"] = job.get("exit_status", 0)
        base["comment"] = "Job run at Fri Dec 04 at 20:00 and finished"
    return base


def qstat(argv):
    if os.path.exists(os.path.join(spool(), "down")):
        print("Connection refused", file=sys.stderr)
        print(f"qstat: cannot connect to server {SERVER} (errno=15010)", file=sys.stderr)
        return 15010
    ids = [argument for argument in argv if not argument.startswith("-") and argument != "json"]
    jobs = {}
    status = 0
    for job_id in ids:
        try:
            job = load(job_id)
        except FileNotFoundError:
            print(f"qstat: Unknown Job Id {job_id}", file=sys.stderr)
            status = 153
            continue
        jobs[job["id"]] = attributes(job)
    if jobs:
        document = {"timestamp": int(time.time()), "pbs_version": "2022.1.1", "pbs_server": SERVER, "Jobs": jobs}
        print(json.dumps(document, indent=4))
    return status


def qdel(argv):
    job_id = argv[-1]
    try:
        job = load(job_id)
    except FileNotFoundError:
        print(f"qdel: Unknown Job Id {job_id}", file=sys.stderr)
        return 153
    if job["state"] == "F":
        print(f"qdel: Job has finished {job_id}", file=sys.stderr)
        return 35
    if job["pid"]:
        try:
            os.killpg(job["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    job["state"] = "F"
    job["exit_status"] = 271
    save(job)
    return 0


def mark_started(job_id):
    job = load(job_id)
    if job["state"] != "Q":
        # Deleted while queued: do not run.
        sys.exit(1)
    job["state"] = "R"
    job["pid"] = os.getpgrp()
    save(job)


def mark_finished(job_id, exit_status):
    job = load(job_id)
    if job["state"] == "R":
        job["state"] = "F"
        job["exit_status"] = int(exit_status)
        save(job)


def main():
    command = os.path.basename(sys.argv[0])
    if sys.argv[1:2] == ["_start"]:
        mark_started(sys.argv[2])
        return 0
    if sys.argv[1:2] == ["_finish"]:
        mark_finished(sys.argv[2], sys.argv[3])
        return 0
    return {"qsub": qsub, "qstat": qstat, "qdel": qdel}[command](sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
