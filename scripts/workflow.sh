#!/usr/bin/env bash
# Install and play, or stop, the demo Cylc workflow as a user, as root:
#   workflow.sh start USER     install (once) and play "demo"
#   workflow.sh stop USER      stop "demo" at once
set -euo pipefail

action=$1
user=$2
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${CYLC_HUB_VENV:-/opt/cylc-hub/venv}
home=$(getent passwd "$user" | cut -d: -f6)

as_user() {
    runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

# Cylc jobs call "cylc message" from a login shell, so cylc must be on the system PATH.
[ -e /usr/local/bin/cylc ] || ln -s "$venv/bin/cylc" /usr/local/bin/cylc

case "$action" in
start)
    if [ ! -d "$home/cylc-run/demo" ]; then
        install -d -o "$user" -g "$(id -g "$user")" "$home/cylc-src/demo"
        install -o "$user" -g "$(id -g "$user")" -m 0644 \
            "$root/demo/workflow/flow.cylc" "$home/cylc-src/demo/flow.cylc"
        as_user cylc install --no-run-name "$home/cylc-src/demo"
    fi
    if as_user cylc ping demo >/dev/null 2>&1; then
        echo "workflow: demo already running as $user"
    else
        # In its own session, so that Ctrl-C on the demo reaches the hub and not the scheduler.
        as_user setsid cylc play demo
    fi
    ;;
stop)
    as_user cylc stop --now --now demo >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: workflow.sh start|stop USER" >&2
    exit 2
    ;;
esac
