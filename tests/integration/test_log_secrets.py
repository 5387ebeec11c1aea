"""No token, password or key in any log file the test run wrote.

This test runs after every other test of the session (the ``scans_logs``
marker), so it reads the logs of every hub, proxy, cylc-access service, UI
server, sshd, Slurm daemon and batch job the run started.
"""

import pytest

import secretscan
from conftest import PASSWORD_FILE


@pytest.mark.scans_logs
def test_logs_contain_no_secret(reliability):
    secretscan.add_secret(PASSWORD_FILE.read_text().strip(), "test users' password")
    secretscan.add_cookie_secrets()
    secrets = secretscan.known_secrets()
    files = list(secretscan.log_files(secretscan.SCAN_ROOTS + (secretscan.ARCHIVE,)))
    scanned_bytes = sum(path.stat().st_size for path in files)

    findings = [finding for path in files for finding in secretscan.scan_file(path, secrets)]

    reliability.record(
        "secrets",
        "Collected every token and key from the environments of the processes the run started "
        "(sampled each second), the users' password and the hubs' cookie secrets, then read "
        "every log file written during the run.",
        "No log file contains a collected secret, an Authorization header value, a token or "
        "OAuth code in a query string, or a private key.",
        secrets_collected=len(secrets),
        log_files=len(files),
        log_megabytes=round(scanned_bytes / 1e6, 1),
    )
    assert len(secrets) > 1, "the sampler collected no token: the scan would prove nothing"
    assert files, "no log file was written during the run: the scan would prove nothing"
    assert not findings, "\n".join(f"{f.path}:{f.line}: {f.what}" for f in findings[:20])
