"""Records of the fault, load and hostile-input tests, for docs/reliability.md.

A test takes the ``reliability`` fixture and calls ``record`` once with
what it did, what held and the figures it measured. At the end of the
session the records, with each test's outcome, are written as JSON to
``$CYLC_HUB_RELIABILITY_RECORDS`` (default ``build/reliability-records.json``);
``scripts/reliability_page.py`` renders the page from that file. Tests that
use the fixture get the ``reliability`` marker, so ``-m reliability`` runs them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDS = Path(os.environ.get("CYLC_HUB_RELIABILITY_RECORDS", ROOT / "build" / "reliability-records.json"))
AREAS = ("faults", "load", "hostile input", "secrets")

_records: dict[str, "Record"] = {}


@dataclass
class Record:
    """What one test did and what held, with its figures and outcome."""

    test: str
    area: str = ""
    did: str = ""
    held: str = ""
    figures: dict = field(default_factory=dict)
    outcome: str = "not run"
    seconds: float = 0.0


class Recorder:
    """The ``reliability`` fixture's value: one per test."""

    def __init__(self, record):
        self._record = record

    def record(self, area, did, held, **figures):
        """Store what the test did (``did``), what held (``held``) and its ``figures``.

        ``area`` is one of ``AREAS``. Figures are plain numbers or short strings
        with their unit in the name, such as ``p95_ms=12.5``.
        """
        if area not in AREAS:
            raise ValueError(f"unknown reliability area {area!r}: use one of {', '.join(AREAS)}")
        self._record.area = area
        self._record.did = did
        self._record.held = held
        self._record.figures.update(figures)

    def figure(self, name, value):
        """Add one figure, for a test that measures as it goes."""
        self._record.figures[name] = value


@pytest.fixture
def reliability(request):
    """A recorder for this test's entry on the reliability page."""
    record = _records.setdefault(request.node.nodeid, Record(test=request.node.nodeid))
    return Recorder(record)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability: a fault, load or hostile-input test recorded on docs/reliability.md"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "reliability" in getattr(item, "fixturenames", ()):
            item.add_marker("reliability")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    record = _records.get(item.nodeid)
    if record is None:
        return

    # A failure in set-up, the call or tear-down is the test's outcome.
    if report.when == "call" or report.failed:
        record.outcome = "skipped" if report.skipped else report.outcome
    if report.when == "call":
        record.seconds = round(report.duration, 1)


def pytest_sessionfinish(session, exitstatus):
    records = [asdict(record) for record in _records.values() if record.area]
    if not records:
        return

    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    document = {"run": _run_facts(), "records": records}
    RECORDS.write_text(json.dumps(document, indent=2) + "\n")


def _run_facts():
    """The date, commit and machine of this run, printed at the top of the page."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    return {
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit or "unknown",
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{memory_kib // 1024 // 1024} GiB",
        "python": platform.python_version(),
    }
