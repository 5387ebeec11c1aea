"""Owners' grants without a hub: the store, the checks and the reconciler's use of them."""

import logging
from datetime import datetime, timedelta, timezone

import pytest

from cylc_hub.policy import parse_policy
from cylc_hub.services.access.grants import (
    GrantError,
    check_grant,
    parse_duration,
    parse_permissions,
)
from cylc_hub.services.access.grants_store import GrantStore
from cylc_hub.services.access.policy_store import PolicyStore
from cylc_hub.services.access.reconcile import Reconciler
from test_access_service import FakeHub

POLICY = """
[groups]
ops = ["carol", "erin"]

[[rules]]
owners = ["*"]
viewers = ["group:ops"]
default = ["READ"]
limit = ["READ", "CONTROL", "!stop"]

[[rules]]
owners = ["alice"]
viewers = ["bob"]
default = ["READ", "CONTROL"]
"""

START = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A settable UTC clock."""

    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def policy():
    return parse_policy(POLICY, source="policy.toml")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def grant_store(tmp_path, clock):
    return GrantStore(f"sqlite:///{tmp_path / 'grants.sqlite'}", clock=clock)


def test_store_survives_reopen(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'grants.sqlite'}"
    first = GrantStore(url, clock=clock)
    first.put("alice", "carol", ("READ", "CONTROL"), created_by="alice", expires_at=None)
    first.put("alice", "group:ops", ("READ",), created_by="alice", expires_at=START + timedelta(hours=8))

    reopened = GrantStore(url, clock=clock)

    assert reopened.grants_of("alice") == [("carol", ("READ", "CONTROL")), ("group:ops", ("READ",))]
    assert reopened.grants("alice")[1].expires_at == START + timedelta(hours=8)


def test_store_put_replaces_same_viewer(grant_store):
    grant_store.put("alice", "carol", ("READ",), created_by="alice", expires_at=None)
    grant_store.put("alice", "carol", ("READ", "CONTROL"), created_by="alice", expires_at=None)

    assert grant_store.grants_of("alice") == [("carol", ("READ", "CONTROL"))]
    assert grant_store.count() == 1


def test_store_hides_then_removes_expired(grant_store, clock):
    grant_store.put("alice", "carol", ("READ",), created_by="alice", expires_at=START + timedelta(hours=1))

    clock.now = START + timedelta(hours=1)

    assert grant_store.grants_of("alice") == []
    expired = grant_store.remove_expired()
    assert [record.viewer for record in expired] == ["carol"]
    assert grant_store.count() == 0


def test_store_remove_missing_returns_none(grant_store):
    assert grant_store.remove("alice", "nobody") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("forever", None),
        ("8h", timedelta(hours=8)),
        ("30 minutes", timedelta(minutes=30)),
        ("2 days", timedelta(days=2)),
        ("1d", timedelta(days=1)),
    ],
)
def test_duration_valid(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("8", "whole number and a unit"),
        ("8 weeks", "whole number and a unit"),
        ("-1h", "whole number and a unit"),
        ("0h", "longer than zero"),
        ("400d", "maximum is 366 days"),
        ("8h; rm -rf /", "whole number and a unit"),
    ],
)
def test_duration_invalid_names_value(text, reason):
    with pytest.raises(GrantError) as caught:
        parse_duration(text)

    assert repr(text[:40]) in str(caught.value)
    assert reason in str(caught.value)


def test_grant_within_limit(policy):
    request = check_grant(policy, "alice", "carol", ["READ", "CONTROL", "!stop"], "8h", now=START)

    assert request.viewer == "carol"
    assert request.permissions == ("READ", "CONTROL", "!stop")
    assert request.expires_at == START + timedelta(hours=8)


def test_grant_above_limit_names_limit(policy):
    with pytest.raises(GrantError) as caught:
        check_grant(policy, "alice", "carol", ["ALL"], None, now=START)

    message = str(caught.value)
    assert "Cannot grant broadcast, stop to carol" in message
    assert "READ, CONTROL, !stop" in message
    assert "rule 1 (line 5)" in message


def test_grant_without_rule_has_empty_limit(policy):
    with pytest.raises(GrantError) as caught:
        check_grant(policy, "alice", "dave", ["READ"], None, now=START)

    assert "no site rule covers this viewer" in str(caught.value)


def test_grant_below_default_allowed(policy):
    request = check_grant(policy, "alice", "bob", ["READ"], None, now=START)

    assert request.permissions == ("READ",)


def test_grant_to_group_uses_group_limit(policy):
    request = check_grant(policy, "alice", "group:ops", ["CONTROL", "!stop"], None, now=START)

    assert request.viewer == "group:ops"
    with pytest.raises(GrantError, match="Cannot grant broadcast to group:ops"):
        check_grant(policy, "alice", "group:ops", ["broadcast"], None, now=START)


@pytest.mark.parametrize(
    ("viewer", "reason"),
    [
        ("*", "'*' and globs are for the site policy"),
        ("op-*", "'*' and globs are for the site policy"),
        ("alice", "every permission on your own server"),
        ("", "Missing viewer"),
        (None, "Missing viewer"),
        ("group:", "group name"),
    ],
)
def test_grant_viewer_invalid(policy, viewer, reason):
    with pytest.raises(GrantError, match=reason):
        check_grant(policy, "alice", viewer, ["READ"], None, now=START)


@pytest.mark.parametrize(
    ("permissions", "reason"),
    [
        ([], "No permissions given"),
        (["REED"], "'REED'"),
        ({"READ": 1}, "give a list"),
        ([3], "3"),
    ],
)
def test_grant_permissions_invalid(permissions, reason):
    with pytest.raises(GrantError, match=reason):
        parse_permissions(permissions)


@pytest.fixture
def policy_store(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    store = PolicyStore(path)
    store.reload_if_changed()
    return store


async def test_grant_creates_share_at_once(policy_store, grant_store):
    hub = FakeHub({"alice": True, "bob": False, "carol": False, "dave": False})
    reconciler = Reconciler(hub, policy_store, grant_store=grant_store, slots=hub.slots)
    await reconciler.sweep()
    assert "dave" not in hub.viewers_of("alice")

    # dave has no rule, so a grant above nothing is rejected; carol's CONTROL is within hers.
    grant_store.put("alice", "carol", ("READ", "CONTROL"), created_by="alice", expires_at=None)
    assert await reconciler.reconcile_now("alice")

    assert "pause" in reconciler.decide("alice", "carol").permissions
    assert "alice" in reconciler.viewable("carol")
    assert "pause" in reconciler.viewable("carol")["alice"]


async def test_grant_below_default_removes_share(policy_store, grant_store):
    hub = FakeHub({"alice": True, "bob": False})
    reconciler = Reconciler(hub, policy_store, grant_store=grant_store, slots=hub.slots)
    await reconciler.sweep()
    assert hub.viewers_of("alice") == {"bob"}

    grant_store.put("alice", "bob", ("pause",), created_by="alice", expires_at=None)
    await reconciler.reconcile_now("alice")

    assert hub.viewers_of("alice") == set()


async def test_expired_grant_revokes_share(policy_store, grant_store, clock, caplog):
    hub = FakeHub({"alice": True, "bob": False, "carol": False, "dave": False})
    # dave's only way in is a grant, and the policy gives him no limit: use bob's rule instead.
    grant_store.put("alice", "carol", ("!read",), created_by="alice", expires_at=START + timedelta(hours=1))
    reconciler = Reconciler(hub, policy_store, grant_store=grant_store, slots=hub.slots)
    await reconciler.sweep()
    assert "carol" not in hub.viewers_of("alice")

    clock.now = START + timedelta(hours=1, seconds=1)
    with caplog.at_level(logging.INFO):
        await reconciler.expire_and_reconcile()

    assert "carol" in hub.viewers_of("alice")
    assert "Grant expired and revoked: id=1 owner=alice viewer=carol" in caplog.text


async def test_foreign_share_revoked_and_logged(policy_store, grant_store, caplog):
    hub = FakeHub({"alice": True, "bob": False, "dave": False}, shares={"alice": {"dave"}})
    reconciler = Reconciler(hub, policy_store, grant_store=grant_store, slots=hub.slots)

    with caplog.at_level(logging.WARNING):
        await reconciler.sweep()

    assert "dave" not in hub.viewers_of("alice")
    assert "Share revoked: alice's server from dave" in caplog.text
    assert "not created by cylc-access" in caplog.text


async def test_grant_below_default_replaces_default(policy_store, grant_store):
    reconciler = Reconciler(FakeHub({"alice": True, "bob": False}), policy_store, grant_store=grant_store, slots=4)
    assert "pause" in reconciler.decide("alice", "bob").permissions

    grant_store.put("alice", "bob", ("READ",), created_by="alice", expires_at=None)

    assert reconciler.decide("alice", "bob").permissions == frozenset({"read"})
    assert reconciler.decide("alice", "bob").basis == "grants"
