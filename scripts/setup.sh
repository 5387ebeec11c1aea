#!/usr/bin/env bash
# Install everything the demo and the tests need on a Debian 12 machine, as root.
#
# Idempotent: a second run only checks what is there. Usage:
#   scripts/setup.sh demo    venv, cylc-hub, Cylc UI Server, the proxy
#   scripts/setup.sh test    the same plus sshd, Slurm, munge, Chromium, test and docs tools
set -euo pipefail

mode=${1:-demo}
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${CYLC_HUB_VENV:-/opt/cylc-hub/venv}
export DEBIAN_FRONTEND=noninteractive

apt_packages=(python3-venv python3-dev build-essential procps sudo rsync)
# A machine may already carry Node.js from another source, with npm bundled.
command -v npm >/dev/null || apt_packages+=(nodejs npm)
if [ "$mode" = test ]; then
    apt_packages+=(openssh-server openssh-client slurmctld slurmd slurm-client munge chromium)
fi

missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The single-user servers run as the users themselves, so the venv comes from
# Debian's /usr/bin/python3 in a world-readable place, not from a Python under /root.
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating the venv $venv"
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
fi

extras=cylc
[ "$mode" = test ] && extras=cylc,test,docs
# The editable install points at one checkout: installing from another checkout,
# or after pyproject.toml changed, installs again.
stamp="$venv/.cylc-hub-install"
wanted="$root $extras $(sha1sum < "$root/pyproject.toml" | cut -c1-12)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "setup: installing cylc-hub[$extras] from $root into $venv"
    "$venv/bin/pip" install -q -e "$root[$extras]"
    echo "$wanted" > "$stamp"
fi
chmod -R a+rX "$(dirname "$venv")"

if [ ! -x "$root/node_modules/.bin/configurable-http-proxy" ]; then
    echo "setup: installing configurable-http-proxy with npm"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "setup: done ($mode)"
