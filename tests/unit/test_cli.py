"""The cylc-hub command: policy check and policy explain."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cylc_hub.cli import main

COMMAND = Path(sys.executable).with_name("cylc-hub")

POLICY = textwrap.dedent(
    """\
    [groups]
    ops = ["carol", "erin"]

    [[rules]]
    owners = ["*"]
    viewers = ["group:ops"]
    default = ["READ"]
    limit = ["READ", "CONTROL"]

    [[rules]]
    owners = ["alice"]
    viewers = ["bob"]
    default = ["READ", "pause"]
    """
)

BROKEN = textwrap.dedent(
    """\
    [[rules]]
    owners = []
    viewers = ["group:nobody"]
    default = ["REED"]
    """
)


@pytest.fixture
def write_policy(tmp_path):
    def write(text: str, name: str = "policy.toml") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def test_check_valid_file(write_policy, capsys):
    path = write_policy(POLICY)

    code = main(["policy", "check", path])

    output = capsys.readouterr()
    assert code == 0
    assert output.out == f"{path}: valid, 2 rules, 1 group, OS groups off\n"
    assert output.err == ""


def test_check_reports_each_problem(write_policy, capsys, invalid_case):
    path = write_policy(invalid_case.text)

    code = main(["policy", "check", path])

    output = capsys.readouterr()
    lines = output.err.splitlines()
    assert code == 1
    assert output.out == ""
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:{invalid_case.line}: ")
    for word in invalid_case.words:
        assert word in lines[0]


def test_check_lists_all_problems(write_policy, capsys):
    path = write_policy(BROKEN)

    code = main(["policy", "check", path])

    lines = capsys.readouterr().err.splitlines()
    assert code == 1
    assert [line.split(": ", 1)[0] for line in lines] == [f"{path}:2", f"{path}:3", f"{path}:4"]


def test_check_missing_file(tmp_path, capsys):
    path = tmp_path / "absent.toml"

    code = main(["policy", "check", str(path)])

    assert code == 1
    assert capsys.readouterr().err.startswith(f"{path}:0: cannot read the policy file")


def test_check_as_subprocess(write_policy):
    good = write_policy(POLICY, "good.toml")
    bad = write_policy(BROKEN, "bad.toml")

    passed = subprocess.run(
        [str(COMMAND), "policy", "check", good], capture_output=True, text=True, check=False
    )
    failed = subprocess.run(
        [str(COMMAND), "policy", "check", bad], capture_output=True, text=True, check=False
    )

    assert passed.returncode == 0
    assert passed.stdout == f"{good}: valid, 2 rules, 1 group, OS groups off\n"
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.splitlines()[0].startswith(f"{bad}:2: 'owners' is empty")
    assert failed.stderr.splitlines()[2].startswith(f"{bad}:4: unknown permission 'REED'")


def test_explain_prints_decision(write_policy, capsys):
    path = write_policy(POLICY)

    code = main(["policy", "explain", path, "alice", "carol"])

    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["owner"] == "alice"
    assert data["user"] == "carol"
    assert data["permissions"] == ["read"]
    assert data["basis"] == "defaults"
    assert data["matched"] == [
        {
            "kind": "rule",
            "rule": 1,
            "line": 4,
            "owners": ["*"],
            "viewers": ["group:ops"],
            "default": ["READ"],
            "limit": ["READ", "CONTROL"],
            "limit_given": True,
        }
    ]
    assert "read: allowed, because the default of rule 1 (line 4) grants it" in data["reasons"][-1]


def test_explain_two_rules(write_policy, capsys):
    path = write_policy(POLICY)

    main(["policy", "explain", path, "alice", "bob"])

    data = json.loads(capsys.readouterr().out)
    assert data["permissions"] == ["pause", "read"]
    assert [entry["rule"] for entry in data["matched"]] == [2]


def test_explain_no_match(write_policy, capsys):
    path = write_policy(POLICY)

    code = main(["policy", "explain", path, "carol", "dave"])

    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["permissions"] == []
    assert data["matched"] == []


def test_explain_owner(write_policy, capsys):
    path = write_policy(POLICY)

    main(["policy", "explain", path, "alice", "alice"])

    data = json.loads(capsys.readouterr().out)
    assert "read" in data["permissions"]
    assert "broadcast" in data["permissions"]
    assert data["basis"] == "owner"


def test_explain_uses_os_groups(write_policy, capsys):
    entry = pwd.getpwuid(os.getuid())
    primary = grp.getgrgid(entry.pw_gid).gr_name
    path = write_policy(
        "[settings]\nos_groups = true\n\n[[rules]]\nowners = ['*']\n"
        f"viewers = ['group:{primary}']\ndefault = ['READ']\n"
    )

    main(["policy", "explain", path, "alice", entry.pw_name])

    assert json.loads(capsys.readouterr().out)["permissions"] == ["read"]


def test_explain_invalid_file(write_policy, capsys):
    path = write_policy(BROKEN)

    code = main(["policy", "explain", path, "alice", "bob"])

    output = capsys.readouterr()
    assert code == 1
    assert output.out == ""
    assert output.err.startswith(f"{path}:2: ")


def test_usage_error_returns_two(capsys):
    assert main(["policy"]) == 2
    assert main(["policy", "explain", "policy.toml", "alice"]) == 2
    assert main([]) == 2
    assert "usage: cylc-hub" in capsys.readouterr().err


def test_help_returns_zero(capsys):
    assert main(["policy", "check", "--help"]) == 0
    assert "usage: cylc-hub policy check" in capsys.readouterr().out
