"""The remote launcher of cylc-ssh, run here as the SSH spawner runs it on a remote host."""

import json
import os
import signal
import stat
import subprocess
import sys
from importlib import resources

import pytest

from cylc_hub.spawners.launcher import BOOTSTRAP
from cylc_hub.spawners.ssh import split_host

SECRET = "launcher-test-secret-4f1d"


def launch(tmp_path, argv, env=None):
    source = resources.files("cylc_hub.spawners").joinpath("launcher.py").read_text()
    request = {
        "argv": argv,
        "env": env or {"JUPYTERHUB_API_TOKEN": SECRET},
        "ip": "127.0.0.1",
        "state_dir": str(tmp_path / "state" / "default"),
        "files": {"jupyter_server_config.py": "c.CylcUIServer.user_authorization = {}\n"},
        "service_path": "/user/alice/",
    }
    stdin = json.dumps(source) + "\n" + json.dumps(request) + "\n"
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP], input=stdin, capture_output=True, text=True, timeout=30
    )
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def test_launcher_starts_process_group(tmp_path):
    result, reply = launch(tmp_path, ["sleep", "30"])
    try:
        assert result.returncode == 0, result.stderr
        pid = reply["pid"]
        assert os.getpgid(pid) == pid
        assert 1024 <= reply["port"] <= 65535

        environ = open(f"/proc/{pid}/environ", "rb").read().decode()
        assert f"JUPYTERHUB_API_TOKEN={SECRET}" in environ
        assert f"JUPYTERHUB_SERVICE_URL=http://127.0.0.1:{reply['port']}/user/alice/" in environ
        assert f"JUPYTER_CONFIG_PATH={tmp_path / 'state' / 'default'}" in environ
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode()
        assert SECRET not in cmdline
    finally:
        os.killpg(reply["pid"], signal.SIGKILL)


def test_launcher_files_private(tmp_path):
    result, reply = launch(tmp_path, ["sleep", "30"])
    os.killpg(reply["pid"], signal.SIGKILL)

    state_dir = tmp_path / "state" / "default"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "jupyter_server_config.py").stat().st_mode) == 0o600
    assert stat.S_IMODE((state_dir / "uiserver.log").stat().st_mode) == 0o600
    assert reply["log"] == str(state_dir / "uiserver.log")


def test_launcher_missing_command(tmp_path):
    result, reply = launch(tmp_path, ["cylc-hub-no-such-command", "hubapp"])

    assert result.returncode == 127
    assert reply["error"] == "not-found"
    assert "cylc-hub-no-such-command" in reply["detail"]


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("login1", ("login1", 22)),
        ("login1:2222", ("login1", 2222)),
        ("127.0.0.2:40000", ("127.0.0.2", 40000)),
        ("login1:ssh", ("login1:ssh", 22)),
        ("::1", ("::1", 22)),
    ],
)
def test_split_host(entry, expected):
    assert split_host(entry, 22) == expected
