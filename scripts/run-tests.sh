#!/usr/bin/env bash
# Run every test of cylc-hub from the venv; extra arguments go to pytest.
#
# pytest's exit code 5 (no test collected) is a failure here: a run that
# executes no test must never pass.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${CYLC_HUB_VENV:-/opt/cylc-hub/venv}
cd "$root"

records=${CYLC_HUB_RELIABILITY_RECORDS:-$root/build/reliability-records.json}
rm -f "$records"

"$venv/bin/python" -m pytest -ra "$@"
status=$?
if [ "$status" = 5 ]; then
    echo "run-tests: pytest collected no test; failing" >&2
    exit 1
fi

# A full run rewrites the reliability page with its own figures.
if [ "$#" = 0 ] && [ -f "$records" ]; then
    "$venv/bin/python" scripts/reliability_page.py "$records" docs/reliability.md
fi
exit "$status"
