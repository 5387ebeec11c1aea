"""The remote launcher of cylc-ssh, run here as the spawner runs it remotely, and the spawner's options."""

import json
import os
import signal
import stat
import subprocess
import sys
import types
from importlib import resources

import pytest

from cylc_hub.spawners.launcher import BOOTSTRAP
from cylc_hub.spawners.ssh import CylcSSHSpawner
from cylc_hub.spawners.ssh_hosts import host_choices, split_host

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


def spawner_for(user, **options):
    return CylcSSHSpawner(
        user=types.SimpleNamespace(name=user, url=f"/user/{user}/"),
        orm_spawner=None,
        hub=None,
        **options,
    )


def test_key_template_expands_user():
    spawner = spawner_for(
        "alice",
        ssh_keyfile="~/.ssh/id_{username}",
        ssh_certificate="/etc/cylc-hub/certs/{username}-cert.pub",
        known_hosts="/etc/cylc-hub/known_hosts",
    )

    target = spawner.transport_for("login1", 22).target

    assert target.client_key == os.path.expanduser("~alice") + "/.ssh/id_alice"
    assert target.certificate == "/etc/cylc-hub/certs/alice-cert.pub"
    assert target.username == "alice"
    assert target.known_hosts == "/etc/cylc-hub/known_hosts"


def test_key_per_host_wins():
    spawner = spawner_for(
        "bob",
        ssh_keyfile="/keys/{username}",
        ssh_keyfiles_by_host={"login2": "/keys/login2/{username}"},
    )

    assert spawner.transport_for("login1", 22).target.client_key == "/keys/bob"
    assert spawner.transport_for("login2", 22).target.client_key == "/keys/login2/bob"


def test_state_round_trip():
    spawner = spawner_for("carol")
    state = {
        "host": "login1",
        "ssh_port": 2222,
        "pid": 4321,
        "remote_ip": "10.0.0.5",
        "remote_port": 40001,
        "tunnel_port": 50001,
    }

    spawner.load_state(state)

    assert spawner.get_state() == state
    assert spawner.ssh_port == 22
    assert spawner.remote_ip == ""
    spawner.clear_state()
    assert spawner.get_state() == {}


async def test_poll_unknown_until_limit(tmp_path):
    # Port 1 on loopback refuses at once, like a login node whose sshd stopped.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    spawner = spawner_for("dave", poll_failure_limit=2, known_hosts=str(known_hosts))
    spawner.load_state(
        {
            "host": "127.0.0.1",
            "ssh_port": 1,
            "pid": 4321,
            "remote_ip": "127.0.0.1",
            "remote_port": 40001,
            "tunnel_port": None,
        }
    )

    assert await spawner.poll() is None
    assert await spawner.poll() == 1


@pytest.mark.parametrize("selection", ["first", "random"])
async def test_candidate_hosts_order(selection):
    hosts = ["login1", "login2:2222", "login3"]
    spawner = spawner_for("alice", remote_hosts=hosts, host_selection=selection)

    candidates = await spawner.candidate_hosts()

    expected = [("login1", 22), ("login2", 2222), ("login3", 22)]
    if selection == "first":
        assert candidates == expected
    else:
        assert sorted(candidates) == sorted(expected)


async def test_candidate_hosts_form_choice():
    spawner = spawner_for("alice", remote_hosts=lambda spawner: ["login1", "login2:2222"])
    spawner.form_values = {"host": "login2:2222"}

    assert await spawner.candidate_hosts() == [("login2", 2222)]
    assert await host_choices(spawner) == [
        {"value": "any", "label": "Least loaded host"},
        "login1",
        "login2:2222",
    ]
