"""Start the UI server on a remote host with secrets taken from standard input.

The SSH spawner runs ``python3 -c BOOTSTRAP`` on the remote host and writes
two lines to its standard input: this file's source as a JSON string, then a
JSON request. So neither the hub token nor the OAuth secret appears in a
command line, and the remote host needs only Python 3 (standard library).

The request has ``argv`` (the server command), ``env`` (added to the login
environment, secrets included), ``ip``, ``state_dir`` (``~`` is expanded),
``files`` (names and texts written into ``state_dir``) and ``service_path``
(the server's URL path). The launcher makes ``state_dir`` readable by the
user only, writes the files there, puts it first on ``JUPYTER_CONFIG_PATH``,
binds a free port on ``ip`` and starts the server in a new session with its
output in ``state_dir/uiserver.log``. It prints one JSON line: ``pid``,
``port`` and ``log`` on success, ``error`` and ``detail`` (exit status 127)
when the command is missing.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

BOOTSTRAP = "import json,sys;exec(json.loads(sys.stdin.readline()))"

LOG_NAME = "uiserver.log"


def _free_port(ip):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def _write_private(path, text):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _reply(message, status=0):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
    sys.exit(status)


def launch(request):
    state_dir = os.path.expanduser(request["state_dir"])
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)
    for name, text in request["files"].items():
        _write_private(os.path.join(state_dir, os.path.basename(name)), text)

    env = dict(os.environ)
    env.update(request["env"])
    inherited = env.get("JUPYTER_CONFIG_PATH")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([state_dir] + ([inherited] if inherited else []))

    argv = request["argv"]
    executable = shutil.which(argv[0], path=env.get("PATH"))
    if executable is None:
        _reply(
            {"error": "not-found", "detail": f"{argv[0]}: not found on PATH {env.get('PATH')}"}, 127
        )

    ip = request["ip"]
    port = _free_port(ip)
    host = f"[{ip}]" if ":" in ip else ip
    env["JUPYTERHUB_SERVICE_URL"] = f"http://{host}:{port}{request['service_path']}"

    log_path = os.path.join(state_dir, LOG_NAME)
    log_descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = subprocess.Popen(
            [executable] + argv[1:],
            env=env,
            cwd=os.path.expanduser("~"),
            stdin=subprocess.DEVNULL,
            stdout=log_descriptor,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        _reply({"error": "not-executable", "detail": f"{executable}: {error}"}, 126)
    finally:
        os.close(log_descriptor)

    _reply({"pid": process.pid, "port": port, "log": log_path})


if __name__ == "__main__":
    launch(json.loads(sys.stdin.readline()))
