"""The log scan behind test_log_secrets: what it finds and which files it reads."""

import os
import time

import secretscan

TOKEN = "0123456789abcdef0123456789abcdef"
# Files with planted secrets get a name that is not a log's, so that the scan
# of the whole run in test_log_secrets does not report them.
PLANTED = "planted-secrets.sample"


def test_scan_finds_known_secret(tmp_path):
    log = tmp_path / PLANTED
    log.write_text(f"start\nsending {TOKEN} to the proxy\n")

    findings = secretscan.scan_file(log, {TOKEN: "environment variable JUPYTERHUB_API_TOKEN"})

    assert [(finding.line, finding.what) for finding in findings] == [(2, "environment variable JUPYTERHUB_API_TOKEN")]


def test_scan_finds_secret_shapes(tmp_path):
    log = tmp_path / PLANTED
    log.write_text(
        f"GET /user/alice/oauth_callback?code={TOKEN}&state=x\n"
        f"Authorization: token {TOKEN}\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "GET /hub/api/oauth2/authorize?code_challenge=abcdefabcdefabcdefabcdef\n"
        "GET /user/alice/lab?token=[secret]\n"
    )

    findings = secretscan.scan_file(log, {})

    assert [finding.line for finding in findings] == [1, 2, 3]


def test_log_files_skip_old_and_non_log(tmp_path):
    new_log = tmp_path / "new.log"
    old_log = tmp_path / "old.log"
    data = tmp_path / "state.json"
    job_output = tmp_path / "jobs" / "cylc-hub-alice.out"
    job_output.parent.mkdir()
    for path in (new_log, old_log, data, job_output):
        path.write_text("x")
    an_hour_ago = time.time() - 3600
    os.utime(old_log, (an_hour_ago, an_hour_ago))

    found = set(secretscan.log_files([tmp_path], since=time.time() - 60))

    assert found == {new_log, job_output}


def test_keep_logs_copies_before_removal(tmp_path, monkeypatch):
    archive = tmp_path / "archive"
    monkeypatch.setattr(secretscan, "ARCHIVE", archive)
    site = tmp_path / "site"
    (site / "sshd").mkdir(parents=True)
    (site / "sshd" / "sshd.log").write_text("accepted key\n")
    (site / "host_key").write_text("key")

    secretscan.keep_logs(site)

    kept = [path.relative_to(archive) for path in archive.rglob("*") if path.is_file()]
    assert len(kept) == 1
    assert kept[0].parts[1:] == ("sshd", "sshd.log")
