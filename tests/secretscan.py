"""Collect the secrets a test run hands out and scan its log files for them.

While the session runs, a thread reads the environment of every process
each second and keeps the values of the variables that carry tokens and keys
(``JUPYTERHUB_API_TOKEN``, ``CONFIGPROXY_AUTH_TOKEN`` ...). Harnesses that
delete a directory of logs call ``keep_logs`` first, which copies the logs
aside. The test in tests/integration/test_log_secrets.py runs last and scans
every log file written during the run for those values, the test users'
password, the hubs' cookie secrets and secret-shaped text such as an OAuth
code in a query string.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SECRET_VARIABLES = re.compile(r"(TOKEN|SECRET|CRYPT_KEY|PASSWORD)$")
# Variables named like secrets whose values are not secret.
PUBLIC_VARIABLES = {"JUPYTERHUB_API_TOKEN_FILE"}
MIN_SECRET_LENGTH = 12
SCAN_ROOTS = (Path("/tmp"), Path("/home"), Path("/var/lib/cylc-hub"))
LOG_SUFFIXES = (".log", ".out", ".err", ".txt")
MAX_FILE_BYTES = 64 * 1024 * 1024
ARCHIVE = Path(os.environ.get("CYLC_HUB_LOG_ARCHIVE", "/tmp/cylc-hub-kept-logs"))

# Secret-shaped text that no log should contain, whatever process wrote it.
SECRET_PATTERNS = {
    "token or OAuth code in a query string": re.compile(
        r"[?&](?:token|access_token|code)=(?!\[secret\])[A-Za-z0-9_\-.%]{16,}"
    ),
    "Authorization header value": re.compile(r"(?i)authorization:\s*(?:token|bearer)\s+[A-Za-z0-9_\-.]{16,}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}

session_started = time.time()
_secrets: dict[str, str] = {}
_lock = threading.Lock()
_stop = threading.Event()


@dataclass
class Finding:
    """One secret found in one log file."""

    path: Path
    line: int
    what: str


def add_secret(value, source):
    """Remember a secret value from ``source`` (a name, never the value) for the final scan."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.setdefault(value, source)


def known_secrets():
    """Return a copy of the collected secrets, each mapped to where it came from."""
    with _lock:
        return dict(_secrets)


def _sample_environments():
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in raw.split(b"\0"):
            name, _, value = item.decode(errors="replace").partition("=")
            if SECRET_VARIABLES.search(name) and name not in PUBLIC_VARIABLES:
                add_secret(value, f"environment variable {name}")


def _sample_forever(interval):
    while not _stop.wait(interval):
        _sample_environments()


def start_sampling(interval=1.0):
    """Start the thread that collects secrets from process environments."""
    _sample_environments()
    thread = threading.Thread(target=_sample_forever, args=(interval,), daemon=True, name="secret-sampler")
    thread.start()
    return thread


def stop_sampling():
    _stop.set()


def keep_logs(directory):
    """Copy the log files under ``directory`` aside before a harness deletes it."""
    directory = Path(directory)
    target = ARCHIVE / f"{directory.name}-{time.monotonic_ns()}"
    for path in log_files([directory], since=0):
        destination = target / path.relative_to(directory)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def is_log(path):
    return path.suffix in LOG_SUFFIXES or path.parent.name == "log" or ".log." in path.name


def log_files(roots=SCAN_ROOTS, since=None):
    """Yield the log files under ``roots`` modified since ``since`` (default: session start)."""
    since = session_started if since is None else since
    for root in roots:
        for directory, subdirectories, names in os.walk(root):
            # Skip caches and the virtual file systems of other tools.
            subdirectories[:] = [name for name in subdirectories if not name.startswith((".cache", "node_modules"))]
            for name in names:
                path = Path(directory, name)
                try:
                    status = path.lstat()
                except OSError:
                    continue
                if path.is_symlink() or not is_log(path) or status.st_mtime < since:
                    continue
                if status.st_size <= MAX_FILE_BYTES:
                    yield path


def scan_file(path, secrets):
    """Return the findings in one file: known secret values and secret-shaped text."""
    findings = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return findings

    for number, line in enumerate(text.splitlines(), start=1):
        for value, source in secrets.items():
            if value in line:
                findings.append(Finding(path, number, source))
        for what, pattern in SECRET_PATTERNS.items():
            if pattern.search(line):
                findings.append(Finding(path, number, what))
    return findings


def add_cookie_secrets(roots=(Path("/tmp"),)):
    """Remember the cookie secret of every hub started during the session."""
    for root in roots:
        for path in root.glob("cylc-hub-test-*/hub/cookie_secret"):
            try:
                if path.stat().st_mtime >= session_started:
                    add_secret(path.read_text().strip(), "hub cookie secret")
            except OSError:
                continue


def pytest_sessionstart(session):
    start_sampling()


def pytest_sessionfinish(session, exitstatus):
    stop_sampling()


def pytest_collection_modifyitems(config, items):
    """Run the log scan after every other test, so that it reads the whole run's logs."""
    last = [item for item in items if item.get_closest_marker("scans_logs")]
    items[:] = [item for item in items if item not in last] + last


def pytest_configure(config):
    config.addinivalue_line("markers", "scans_logs: runs after every other test of the session")
