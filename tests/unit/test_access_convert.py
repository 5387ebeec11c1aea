"""The site_authorization converter: the same decisions as cylc-uiserver 1.7.1, and its errors."""

import logging

import pytest

from cylc.uiserver.authorise import Authorization
from cylc_hub.cli import main
from cylc_hub.policy import parse_policy
from cylc_hub.policy.convert import ConversionError, convert_site_authorization

GROUPS = {
    "ann": ["ops"],
    "ben": ["dev"],
    "cat": ["ops", "dev"],
    "dan": [],
    "eve": ["dev"],
}

SITE_AUTHORIZATION = {
    "*": {
        "*": {"default": "READ"},
        "group:ops": {"default": ["READ", "CONTROL"], "limit": ["READ", "CONTROL", "!stop"]},
    },
    "group:dev": {
        "group:dev": {"default": ["READ", "pause"], "limit": "ALL"},
        "dan": {"default": ["!read"], "limit": ["READ"]},
    },
    "ann": {"ben": {"default": ["READ", "!pause"], "limit": ["READ", "CONTROL"]}},
    "eve": {"*": {"default": ["READ", "trigger"], "limit": ["READ", "CONTROL"]}},
}


@pytest.fixture
def cylc_groups(monkeypatch):
    monkeypatch.setattr(
        Authorization, "_get_groups", lambda self, user: [f"group:{name}" for name in GROUPS[user]]
    )


def cylc_decision(owner, viewer):
    authorization = Authorization(owner, {}, SITE_AUTHORIZATION, logging.getLogger("cylc"))
    return frozenset(authorization.get_permitted_operations(viewer))


@pytest.mark.parametrize("owner", sorted(GROUPS))
def test_convert_same_decisions_as_cylc(owner, cylc_groups):
    policy = parse_policy(convert_site_authorization(SITE_AUTHORIZATION), source="converted.toml")

    for viewer in sorted(GROUPS):
        ours = policy.decide(owner, viewer, owner_groups=GROUPS[owner], viewer_groups=GROUPS[viewer])
        assert ours.permissions == cylc_decision(owner, viewer), (owner, viewer)


@pytest.mark.parametrize(
    ("site_authorization", "message"),
    [
        ({"*": {"*": {"default": []}}}, "an empty list is invalid"),
        ({"*": {"*": {"default": ["REED"]}}}, "unknown permission 'REED'"),
        ({"*": {"*": {"defaults": ["READ"]}}}, "unknown keys ['defaults']"),
        ({"*": ["READ"]}, "must be a dict of viewers"),
        ({"*": {"*": "READ"}}, "must be a dict with 'default' and 'limit'"),
    ],
)
def test_convert_rejects_invalid_entry(site_authorization, message):
    with pytest.raises(ConversionError) as caught:
        convert_site_authorization(site_authorization)

    assert message in str(caught.value)


def test_convert_narrows_default_to_limit():
    text = convert_site_authorization({"*": {"*": {"default": ["READ", "CONTROL"], "limit": "READ"}}})

    assert 'default = ["read"]' in text
    assert parse_policy(text).decide("ann", "ben").permissions == frozenset({"read"})


def test_convert_command_prints_policy(tmp_path, capsys):
    config = tmp_path / "jupyter_config.py"
    config.write_text(f"c.CylcUIServer.site_authorization = {SITE_AUTHORIZATION!r}\n")

    assert main(["policy", "convert", str(config)]) == 0

    output = capsys.readouterr().out
    assert "os_groups = true" in output
    assert parse_policy(output).rules


def test_convert_command_without_setting(tmp_path, capsys):
    config = tmp_path / "jupyter_config.py"
    config.write_text("c.ServerApp.port = 8888\n")

    assert main(["policy", "convert", str(config)]) == 1

    assert "does not set c.CylcUIServer.site_authorization" in capsys.readouterr().err


def test_convert_command_missing_file(tmp_path, capsys):
    assert main(["policy", "convert", str(tmp_path / "absent.py")]) == 1

    assert "file not found" in capsys.readouterr().err
