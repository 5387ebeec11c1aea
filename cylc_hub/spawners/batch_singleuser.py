"""Start the single-user server inside a batch job, after telling the hub its port.

Run in the job script as ``python -m cylc_hub.spawners.batch_singleuser CMD
ARGS...``. It binds a free TCP port, sends ``{"port": N}`` to the hub's
``/cylc-batch/port`` API with the server's own token, puts the port into
``JUPYTERHUB_SERVICE_URL`` and replaces itself with ``CMD ARGS...``.
"""

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

REPORT_ATTEMPTS = 5


def pick_port(ip):
    """Return a port that was free on ``ip`` a moment ago.

    NOTE: another process may take the port between this check and the
    server's bind. The server then fails to start after the hub has the
    port, so the hub waits ``http_timeout`` before it reports the failure.
    """
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def report_port(api_url, token, port):
    request = urllib.request.Request(
        api_url.rstrip("/") + "/cylc-batch/port",
        data=json.dumps({"port": port}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    for attempt in range(REPORT_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30):
                return
        except urllib.error.HTTPError:
            raise
        except OSError as error:
            print(f"reporting the port to the hub failed ({error}), retrying", file=sys.stderr)
            time.sleep(2**attempt)
    raise SystemExit("the hub did not accept the server's port; giving up")


def main(argv):
    if not argv:
        raise SystemExit("usage: python -m cylc_hub.spawners.batch_singleuser CMD [ARGS...]")

    service = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    ip = service.hostname or "0.0.0.0"
    port = pick_port(ip)
    host = f"[{ip}]" if ":" in ip else ip
    os.environ["JUPYTERHUB_SERVICE_URL"] = urlunsplit(service._replace(netloc=f"{host}:{port}"))

    report_port(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"], port)
    print(f"reported port {port} to the hub; starting {argv[0]}", file=sys.stderr, flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
