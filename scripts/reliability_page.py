"""Render docs/reliability.md from the records the tests wrote in their last run.

Usage: reliability_page.py [RECORDS_JSON] [PAGE]

The records come from the ``reliability`` fixture in tests/reliability.py;
``make reliability`` runs the recorded tests and then this script.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AREAS = {
    "faults": "Faults",
    "load": "Load",
    "hostile input": "Hostile input",
    "secrets": "Secrets",
}

HEADER = """\
# Reliability record

Each row is one test of `make test` that breaks cylc-hub on purpose. It
restarts or kills parts, fills the disk, loads the hub or feeds it hostile
input. Unless the row states otherwise, the test runs against the real
JupyterHub, configurable-http-proxy, Cylc UI Server, sshd and Slurm. "What held" is what the test
asserts; the figures are what it measured in the run below. Figures are
wall-clock times on the machine named here, not targets.

Regenerate this page with `make reliability`, which runs these tests and then
`scripts/reliability_page.py`; `make test` rewrites it after a full run.

"""


def escape_cell(text):
    """Return ``text`` safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def format_figures(figures):
    return "; ".join(f"{name} = {value}" for name, value in figures.items()) or "-"


def render(document):
    """Return the page's Markdown for a records document."""
    run = document["run"]
    records = document["records"]
    passed = sum(record["outcome"] == "passed" for record in records)
    lines = [
        HEADER,
        f"Last run: {run['finished']}, commit `{run['commit']}`, {run['machine']}, "
        f"Python {run['python']}; {passed} of {len(records)} recorded tests passed.\n",
    ]

    for area, title in AREAS.items():
        rows = [record for record in records if record["area"] == area]
        if not rows:
            continue
        lines.append(f"\n## {title}\n")
        lines.append("| test | what it did | what held | figures | result |")
        lines.append("| --- | --- | --- | --- | --- |")
        for record in sorted(rows, key=lambda record: record["test"]):
            cells = [
                f"`{record['test']}`",
                record["did"],
                record["held"],
                format_figures(record["figures"]),
                f"{record['outcome']} ({record['seconds']} s)",
            ]
            lines.append("| " + " | ".join(escape_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    records_path = Path(argv[1]) if len(argv) > 1 else ROOT / "build" / "reliability-records.json"
    page_path = Path(argv[2]) if len(argv) > 2 else ROOT / "docs" / "reliability.md"
    if not records_path.exists():
        print(f"reliability_page: {records_path} not found; run `make reliability` first", file=sys.stderr)
        return 1

    document = json.loads(records_path.read_text())
    page_path.parent.mkdir(parents=True, exist_ok=True)
    page_path.write_text(render(document))
    print(f"reliability_page: wrote {page_path} from {len(document['records'])} records")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
