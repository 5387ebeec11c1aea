"""Hostile policy files and command lines: each gets a clear error, never a traceback."""

import pytest

from cylc_hub.cli import main
from cylc_hub.policy import PolicyError, load_policy, parse_policy
from cylc_hub.policy.loader import MAX_POLICY_BYTES


def test_deep_nesting_is_policy_error():
    text = "x = " + "[" * 2000 + "]" * 2000

    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "deep.toml")

    assert str(caught.value) == "deep.toml:1: invalid TOML: arrays or tables are nested too deeply"


def test_deep_nesting_check_exit_code(tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 2000 + "]" * 2000)

    status = main(["policy", "check", str(path)])

    assert status == 1
    assert f"{path}:1: invalid TOML" in capsys.readouterr().err


def test_oversized_file_rejected(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text("# " + "x" * MAX_POLICY_BYTES + "\n")

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert f"{path}:0: the policy file is larger than" in str(caught.value)


def test_byte_order_mark_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[groups]\nops = [\"carol\"]\n")

    policy = load_policy(path)

    assert policy.groups["ops"] == frozenset({"carol"})


@pytest.mark.parametrize("owner, viewer", [("", "bob"), ("alice", " "), ("group:ops", "bob"), ("alice", "b*")])
def test_explain_rejects_non_user_names(tmp_path, capsys, owner, viewer):
    path = tmp_path / "policy.toml"
    path.write_text("")

    status = main(["policy", "explain", str(path), owner, viewer])

    assert status == 2
    assert "user name" in capsys.readouterr().err


def test_version_option(capsys):
    status = main(["--version"])

    assert status == 0
    assert capsys.readouterr().out.startswith("cylc-hub ")


def test_jupyterhub_groups_allows_undeclared_group():
    text = '[settings]\njupyterhub_groups = true\n[[rules]]\nowners = ["*"]\nviewers = ["group:hpc"]\ndefault = ["READ"]\n'

    policy = parse_policy(text, "hub.toml")

    assert policy.jupyterhub_groups
    assert not policy.os_groups
    assert "read" in policy.decide("alice", "bob", viewer_groups={"hpc"}).permissions


def test_jupyterhub_groups_must_be_boolean():
    with pytest.raises(PolicyError) as caught:
        parse_policy('[settings]\njupyterhub_groups = "yes"\n', "hub.toml")

    assert str(caught.value) == "hub.toml:2: 'jupyterhub_groups' in [settings] must be true or false, not 'yes'."
