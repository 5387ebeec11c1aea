"""Decisions of the site policy: selectors, defaults, limits, negation and grants."""

from __future__ import annotations

import grp
import os
import pwd
import textwrap

import pytest

from cylc_hub.policy import (
    ALL_PERMISSIONS,
    MUTATIONS,
    PERMISSION_GROUPS,
    Grant,
    parse_policy,
)

CONTROL = PERMISSION_GROUPS["CONTROL"]
READ = frozenset({"read"})
NOTHING = frozenset()

POLICY = textwrap.dedent(
    """
    [groups]
    ops = ["carol", "erin"]
    interns = ["ivan"]

    # 1: operations read everyone and may be granted control.
    [[rules]]
    owners = ["*"]
    viewers = ["group:ops"]
    default = ["READ"]
    limit = ["READ", "CONTROL"]

    # 2: bob reads alice and pauses her workflows, and may get anything.
    [[rules]]
    owners = ["alice"]
    viewers = ["bob"]
    default = ["READ", "pause"]
    limit = ["ALL"]

    # 3: everyone reads the shared account.
    [[rules]]
    owners = ["shared"]
    viewers = ["*"]
    default = ["READ"]

    # 4: operational accounts see each other and may pause.
    [[rules]]
    owners = ["op-*"]
    viewers = ["op-*"]
    default = ["READ", "pause"]

    # 5: frank controls gina's workflows without reading them.
    [[rules]]
    owners = ["gina"]
    viewers = ["frank"]
    default = ["CONTROL"]

    # 6: interns may never stop anything, whatever else applies.
    [[rules]]
    owners = ["*"]
    viewers = ["group:interns"]
    limit = ["!stop", "!kill"]

    # 7: ivan reads everyone and may pause, stop and kill.
    [[rules]]
    owners = ["*"]
    viewers = ["ivan"]
    default = ["READ", "pause", "stop"]
    limit = ["READ", "pause", "stop", "kill"]

    # 8: erin gets read by default from rule 1, but this default negates it.
    [[rules]]
    owners = ["alice"]
    viewers = ["erin"]
    default = ["!READ"]
    limit = ["READ"]

    # 9: ops owners show their servers to bob, with every permission but broadcast.
    [[rules]]
    owners = ["group:ops"]
    viewers = ["bob"]
    default = ["ALL", "!broadcast"]
    """
)


@pytest.fixture(scope="module")
def policy():
    return parse_policy(POLICY, "policy.toml")


DECISIONS = [
    # (case, owner, viewer, grants, expected permissions)
    ("user-name", "alice", "bob", None, READ | {"pause"}),
    ("user-name-other-owner", "dave", "bob", None, NOTHING),
    ("group-viewer", "dave", "carol", None, READ),
    ("group-owner", "carol", "bob", None, ALL_PERMISSIONS - {"broadcast"}),
    ("star-viewer", "shared", "dave", None, READ),
    ("glob-both", "op-1", "op-2", None, READ | {"pause"}),
    ("glob-no-match", "op-1", "opx", None, NOTHING),
    ("glob-owner-no-match", "opx", "op-2", None, NOTHING),
    ("owner-gets-all", "alice", "alice", None, ALL_PERMISSIONS),
    ("owner-gets-all-without-rules", "zed", "zed", None, ALL_PERMISSIONS),
    ("no-matching-rule", "alice", "dave", None, NOTHING),
    ("default-used-without-grant", "alice", "bob", [], READ | {"pause"}),
    ("control-excludes-read", "gina", "frank", None, CONTROL),
    ("negation-in-limit", "alice", "ivan", None, READ | {"pause"}),
    ("negation-in-default", "alice", "erin", None, NOTHING),
    ("grant-replaces-negated-default", "alice", "erin", [("erin", ["READ"])], READ),
    ("all-includes-read", "alice", "bob", [("bob", ["ALL"])], ALL_PERMISSIONS),
    ("grant-capped-by-limit", "dave", "carol", [("group:ops", ["ALL"])], READ | CONTROL),
    ("grant-below-default", "alice", "bob", [("bob", ["READ"])], READ),
    ("grant-without-read", "alice", "bob", [("bob", ["pause"])], frozenset({"pause"})),
    ("grant-for-other-viewer", "alice", "bob", [("dave", ["ALL"])], READ | {"pause"}),
    ("grant-for-unmatched-viewer", "alice", "dave", [("dave", ["ALL"])], NOTHING),
    ("grant-glob", "alice", "bob", [("b*", ["READ", "stop"])], READ | {"stop"}),
    ("grant-star", "alice", "bob", [("*", ["READ"])], READ),
    (
        "grants-union",
        "alice",
        "bob",
        [("bob", ["READ"]), ("*", ["hold", "release"])],
        READ | {"hold", "release"},
    ),
    (
        "grant-negation",
        "alice",
        "bob",
        [("bob", ["ALL"]), ("*", ["!broadcast", "!CONTROL"])],
        READ,
    ),
    ("grant-cannot-beat-limit-negation", "alice", "ivan", [("ivan", ["ALL"])], READ | {"pause"}),
    ("grant-empty-list", "alice", "bob", [("bob", [])], NOTHING),
]


@pytest.mark.parametrize(
    ("owner", "viewer", "grants", "expected"),
    [case[1:] for case in DECISIONS],
    ids=[case[0] for case in DECISIONS],
)
def test_decide_table(policy, owner, viewer, grants, expected):
    decision = policy.decide(owner, viewer, grants=grants)

    assert decision.owner == owner
    assert decision.user == viewer
    assert decision.permissions == expected


def test_control_group_has_no_read_or_broadcast():
    assert "read" not in CONTROL
    assert "broadcast" not in CONTROL
    assert CONTROL == MUTATIONS - {"broadcast"}


def test_decide_extra_groups_count(policy):
    decision = policy.decide("dave", "mallory", viewer_groups=["ops"])

    assert decision.permissions == READ


def test_decide_extra_owner_groups_count(policy):
    decision = policy.decide("dave", "bob", owner_groups=["ops"])

    assert decision.permissions == ALL_PERMISSIONS - {"broadcast"}


def test_decide_grant_group_selector(policy):
    grants = [("group:ops", ["READ", "pause"])]

    carol = policy.decide("alice", "carol", grants=grants)
    bob = policy.decide("alice", "bob", grants=grants)

    assert carol.permissions == READ | {"pause"}
    assert bob.permissions == READ | {"pause"}
    assert bob.basis == "defaults"
    assert carol.basis == "grants"


def test_decide_accepts_grant_objects(policy):
    grant = Grant.parse("bob", ["READ"])

    decision = policy.decide("alice", "bob", grants=[grant])

    assert decision.permissions == READ


@pytest.mark.parametrize(
    "grants",
    [
        [("bob", ["REED"])],
        [("bob", [1])],
        [("bob", "READ")],
        [("op-[", ["READ"])],
        [(7, ["READ"])],
        [("bob",)],
    ],
    ids=["unknown-name", "not-string", "string-not-list", "bad-glob", "selector-not-string", "not-pair"],
)
def test_decide_rejects_invalid_grant(policy, grants):
    with pytest.raises(ValueError):
        policy.decide("alice", "bob", grants=grants)


def test_decision_json_for_default(policy):
    decision = policy.decide("alice", "bob")

    data = decision.to_json()

    assert data["owner"] == "alice"
    assert data["user"] == "bob"
    assert data["permissions"] == ["pause", "read"]
    assert data["basis"] == "defaults"
    assert data["matched"] == [
        {
            "kind": "rule",
            "rule": 2,
            "line": 14,
            "owners": ["alice"],
            "viewers": ["bob"],
            "default": ["READ", "pause"],
            "limit": ["ALL"],
            "limit_given": True,
        }
    ]


def test_decision_json_lists_grants_in_use(policy):
    decision = policy.decide("alice", "bob", grants=[("bob", ["READ"]), ("dave", ["ALL"])])

    matched = decision.to_json()["matched"]

    assert [entry["kind"] for entry in matched] == ["rule", "grant"]
    assert matched[1] == {"kind": "grant", "viewer": "bob", "permissions": ["READ"]}


def test_decision_json_missing_limit(policy):
    decision = policy.decide("shared", "dave")

    rule = decision.to_json()["matched"][0]

    assert rule["limit"] == ["READ"]
    assert rule["limit_given"] is False


def reason_for(decision, permission):
    """Return the explanation whose list of names contains ``permission``."""
    for reason in decision.reasons:
        names, _, sentence = reason.partition(": ")
        if permission in names.split(", "):
            return sentence
    raise AssertionError(f"no reason mentions {permission!r}: {decision.reasons}")


def test_reasons_explain_each_outcome(policy):
    decision = policy.decide("alice", "ivan", grants=[("ivan", ["ALL", "!hold"])])

    assert reason_for(decision, "read") == (
        "allowed, because the grant to 'ivan' grants it within the limit of rule 7 (line 45)."
    )
    assert reason_for(decision, "stop") == (
        "denied, because the limit of rule 6 (line 39) negates it."
    )
    assert reason_for(decision, "hold") == "denied, because the grant to 'ivan' negates it."
    assert reason_for(decision, "broadcast") == (
        "denied, because no matching limit includes it, although the grant to 'ivan' grants it."
    )


def test_reasons_group_equal_explanations(policy):
    decision = policy.decide("alice", "ivan", grants=[("ivan", ["ALL", "!hold"])])

    assert any(reason.startswith("kill, stop: ") for reason in decision.reasons)
    assert any(reason.startswith("pause, read: ") for reason in decision.reasons)


def test_reasons_name_default_source(policy):
    decision = policy.decide("alice", "erin")

    assert reason_for(decision, "read") == (
        "denied, because the default of rule 8 (line 52) negates it."
    )


def test_reasons_name_unused_limit(policy):
    decision = policy.decide("dave", "carol")

    assert reason_for(decision, "pause") == (
        "not granted, although the limit of rule 1 (line 7) would allow the owner to grant it."
    )


def test_reasons_for_no_rule(policy):
    decision = policy.decide("alice", "dave")

    assert decision.matched == ()
    assert decision.reasons == (
        "No rule matches this owner and viewer, so the viewer has no permissions.",
    )


def test_reasons_for_owner(policy):
    decision = policy.decide("alice", "alice")

    assert decision.basis == "owner"
    assert decision.to_json()["permissions"] == sorted(ALL_PERMISSIONS)


def test_decision_is_frozen(policy):
    decision = policy.decide("alice", "bob")

    with pytest.raises(AttributeError):
        decision.permissions = frozenset()


def test_viewable_lists_readable_owners(policy):
    owners = ["alice", "bob", "carol", "dave", "gina", "shared", "op-1"]

    viewable = policy.viewable("bob", owners)

    assert viewable == {
        "alice": READ | {"pause"},
        "carol": ALL_PERMISSIONS - {"broadcast"},
        "shared": READ,
    }


def test_viewable_leaves_out_control_without_read(policy):
    assert policy.viewable("frank", ["gina"]) == {}
    assert policy.decide("gina", "frank").permissions == CONTROL


def test_viewable_uses_extra_groups(policy):
    def hub_groups(user):
        return ["ops"] if user == "mallory" else []

    viewable = policy.viewable("mallory", ["alice", "dave"], groups_of=hub_groups)

    assert viewable == {"alice": READ, "dave": READ}


def test_viewable_uses_grants(policy):
    def grants_of(owner):
        return [("bob", ["READ"])] if owner == "alice" else None

    viewable = policy.viewable("bob", ["alice", "shared"], grants_of=grants_of)

    assert viewable == {"alice": READ, "shared": READ}


def test_viewable_matches_decide(policy):
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "ivan", "op-1", "op-2", "shared"]

    for viewer in users:
        expected = {
            owner: policy.decide(owner, viewer).permissions
            for owner in users
            if owner != viewer and "read" in policy.decide(owner, viewer).permissions
        }
        assert policy.viewable(viewer, users) == expected, viewer


def test_viewable_skips_owner_groups_when_unused():
    policy = parse_policy('[[rules]]\nowners = ["*"]\nviewers = ["bob"]\ndefault = ["READ"]\n')
    looked_up = []

    def groups_of(user):
        looked_up.append(user)
        return []

    viewable = policy.viewable("bob", ["alice", "carol"], groups_of=groups_of)

    assert viewable == {"alice": READ, "carol": READ}
    assert looked_up == ["bob"]


def test_groups_of_file_and_extra(policy):
    assert policy.groups_of("carol") == {"ops"}
    assert policy.groups_of("carol", ["hub-admins"]) == {"ops", "hub-admins"}
    assert policy.groups_of("nobody") == frozenset()


def test_groups_of_ignores_os_groups_by_default(policy):
    user = pwd.getpwuid(os.getuid()).pw_name

    assert policy.groups_of(user) == frozenset()


def test_groups_of_reads_os_groups():
    entry = pwd.getpwuid(os.getuid())
    primary = grp.getgrgid(entry.pw_gid).gr_name
    policy = parse_policy(
        "[settings]\nos_groups = true\n\n[groups]\nlocal = [%r]\n" % entry.pw_name
    )

    groups = policy.groups_of(entry.pw_name)

    assert primary in groups
    assert "local" in groups


def test_groups_of_unknown_os_user():
    policy = parse_policy("[settings]\nos_groups = true\n")

    assert policy.groups_of("no-such-user-for-cylc-hub-tests") == frozenset()


def test_os_group_selector_matches():
    entry = pwd.getpwuid(os.getuid())
    primary = grp.getgrgid(entry.pw_gid).gr_name
    policy = parse_policy(
        "[settings]\nos_groups = true\n\n[[rules]]\nowners = ['*']\n"
        f"viewers = ['group:{primary}']\ndefault = ['READ']\n"
    )

    assert policy.decide("alice", entry.pw_name).permissions == READ
    assert policy.decide("alice", "no-such-user-for-cylc-hub-tests").permissions == NOTHING


def test_policy_groups_are_read_only(policy):
    with pytest.raises(TypeError):
        policy.groups["ops"] = frozenset({"mallory"})
