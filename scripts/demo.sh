#!/usr/bin/env bash
# Set up and run the cylc-hub demo in the foreground on http://127.0.0.1:8000, as root.
#
# Ctrl-C stops the hub, which stops the proxy, the cylc-access service and the
# users' UI servers; this script then stops alice's demo workflow.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${CYLC_HUB_VENV:-/opt/cylc-hub/venv}

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root: the hub starts each user's server as that user" >&2
    exit 1
fi

"$root/scripts/setup.sh" demo

password=${CYLC_HUB_DEMO_PASSWORD:-}
if [ -z "$password" ]; then
    password=$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))')
    echo "demo: CYLC_HUB_DEMO_PASSWORD is not set; the demo users' password is: $password"
fi
printf '%s\n' "$password" | "$root/scripts/users.sh" alice bob carol dave

"$root/scripts/workflow.sh" start alice
stop_workflow() { "$root/scripts/workflow.sh" stop alice; }
trap stop_workflow EXIT

echo "demo: open http://127.0.0.1:8000 and log in as alice, bob, carol or dave"
# Ctrl-C reaches the hub, which shuts down its proxy, service and servers; this
# script waits for that and then stops the workflow (the EXIT trap).
trap ':' INT
"$venv/bin/jupyterhub" -f "$root/jupyterhub_config.py" || true
