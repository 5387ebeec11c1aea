"""Validation of policy files: every problem, with its file and line."""

from __future__ import annotations

import textwrap

import pytest

from cylc_hub.policy import (
    Policy,
    PolicyError,
    PolicyIssue,
    load_policy,
    parse_policy,
)

VALID = textwrap.dedent(
    """
    [groups]
    ops = ["carol", "erin"]

    [[rules]]
    owners = ["*"]
    viewers = ["group:ops"]
    default = ["READ"]
    limit = ["READ", "CONTROL"]
    """
)


def parse_issues(text: str, source: str = "policy.toml") -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source)
    return caught.value.issues


def test_parse_reports_each_problem(invalid_case):
    issues = parse_issues(invalid_case.text)

    assert len(issues) == 1, issues
    issue = issues[0]
    assert issue.file == "policy.toml"
    assert issue.line == invalid_case.line, issue
    for word in invalid_case.words:
        assert word in issue.reason


def test_error_text_is_file_line_reason(invalid_case):
    with pytest.raises(PolicyError) as caught:
        parse_policy(invalid_case.text, "site/policy.toml")

    prefix = f"site/policy.toml:{invalid_case.line}: "
    assert str(caught.value).startswith(prefix)


def test_parse_collects_all_problems():
    text = textwrap.dedent(
        """
        [settings]
        os_groups = 1

        [[rules]]
        owners = []
        viewers = ["*"]
        default = ["pase"]

        [[rules]]
        viewers = ["*"]
        extra = true
        """
    ).lstrip()

    issues = parse_issues(text)

    assert [issue.line for issue in issues] == [2, 5, 7, 9, 11]
    assert "os_groups" in issues[0].reason
    assert "'owners' is empty" in issues[1].reason
    assert "Did you mean 'pause'?" in issues[2].reason
    assert "rule 2 has no 'owners'" in issues[3].reason
    assert "unknown key 'extra' in rule 2" in issues[4].reason


def test_error_string_joins_issues():
    error = PolicyError([
        PolicyIssue("p.toml", 9, "second"),
        PolicyIssue("p.toml", 2, "first"),
    ])

    assert str(error) == "p.toml:2: first\np.toml:9: second"
    assert isinstance(error, ValueError)
    assert error.issues[0].line == 2


def test_valid_policy_parses():
    policy = parse_policy(VALID, "policy.toml")

    assert isinstance(policy, Policy)
    assert policy.source == "policy.toml"
    assert dict(policy.groups) == {"ops": frozenset({"carol", "erin"})}
    assert len(policy.rules) == 1
    assert policy.rules[0].line == 5
    assert policy.rules[0].number == 1
    assert policy.os_groups is False


def test_empty_file_is_valid():
    policy = parse_policy("")

    assert policy.rules == ()
    assert dict(policy.groups) == {}


def test_missing_limit_equals_default():
    policy = parse_policy(
        '[[rules]]\nowners = ["*"]\nviewers = ["*"]\ndefault = ["READ"]\n'
    )

    rule = policy.rules[0]
    assert rule.limit == ("READ",)
    assert rule.limit_given is False


def test_os_groups_allow_undeclared_group():
    text = textwrap.dedent(
        """
        [settings]
        os_groups = true

        [[rules]]
        owners = ["*"]
        viewers = ["group:wheel"]
        default = ["READ"]
        """
    )

    policy = parse_policy(text)

    assert policy.os_groups is True
    assert policy.rules[0].viewers[0].name == "wheel"


def test_invalid_group_is_still_declared():
    text = textwrap.dedent(
        """
        [groups]
        ops = ["carol", 1]

        [[rules]]
        owners = ["*"]
        viewers = ["group:ops"]
        """
    ).lstrip()

    issues = parse_issues(text)

    assert [issue.line for issue in issues] == [2]


def test_glob_with_closed_class_is_valid():
    text = '[[rules]]\nowners = ["op-[ab]*", "x[!]]"]\nviewers = ["[]]"]\n'

    policy = parse_policy(text)

    assert [selector.kind for selector in policy.rules[0].owners] == ["glob", "glob"]


def test_load_missing_file_is_line_zero(tmp_path):
    path = tmp_path / "absent.toml"

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    issue = caught.value.issues[0]
    assert issue.file == str(path)
    assert issue.line == 0
    assert "No such file" in issue.reason
    assert str(caught.value).startswith(f"{path}:0: cannot read the policy file")


def test_load_directory_is_line_zero(tmp_path):
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path)

    assert caught.value.issues[0].line == 0


def test_load_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_bytes(b'[groups]\nops = ["caf\xe9"]\n')

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert caught.value.issues[0].line == 2
    assert "UTF-8" in caught.value.issues[0].reason


def test_load_valid_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(VALID, encoding="utf-8")

    policy = load_policy(path)

    assert policy.source == str(path)
    assert len(policy.rules) == 1


def test_load_reports_its_path(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text("[[rules]]\nowners = []\nviewers = ['*']\n", encoding="utf-8")

    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))

    assert str(caught.value).startswith(f"{path}:2: ")
