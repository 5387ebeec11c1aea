"""cylc-access parts without a hub: the policy store and the reconciler against a fake hub API."""

import logging
import os

import pytest

from cylc_hub.services.access.hub_client import HubAPIError
from cylc_hub.services.access.policy_store import PolicyStore
from cylc_hub.services.access.reconcile import Reconciler, owner_from_model

DEMO_POLICY = """
[groups]
ops = ["carol"]

[[rules]]
owners = ["alice"]
viewers = ["bob"]
default = ["READ"]

[[rules]]
owners = ["alice"]
viewers = ["group:ops"]
default = ["READ", "CONTROL"]
"""


class FakeHub:
    """A stand-in for the hub API that records the shares it is asked to change."""

    def __init__(self, users, shares=None, failing_owners=()):
        self.users = users
        self.shares = {owner: set(viewers) for owner, viewers in (shares or {}).items()}
        self.failing_owners = set(failing_owners)
        self.calls = []

    async def list_users(self):
        return [
            {"name": name, "servers": {"": {"ready": True}} if has_server else {}}
            for name, has_server in self.users.items()
        ]

    async def list_shares(self, owner):
        if owner in self.failing_owners:
            raise HubAPIError("GET", f"/shares/{owner}", 500, "boom")
        return [
            {"user": {"name": viewer}, "group": None, "server": {"name": ""}}
            for viewer in sorted(self.shares.get(owner, ()))
        ]

    async def grant_share(self, owner, viewer, server_name=""):
        self.calls.append(("grant", owner, viewer))
        self.shares.setdefault(owner, set()).add(viewer)

    async def revoke_share(self, owner, viewer, server_name=""):
        self.calls.append(("revoke", owner, viewer))
        self.shares.get(owner, set()).discard(viewer)


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(DEMO_POLICY)
    return path


@pytest.fixture
def store(policy_file):
    store = PolicyStore(policy_file)
    assert store.reload_if_changed()
    return store


def replace_file(path, text):
    """Write ``text`` so that the store sees a change even within one mtime tick."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_store_keeps_last_good_policy(store, policy_file, caplog):
    replace_file(policy_file, '[[rules]]\nowners = ["*"]\nviewers = ["*"]\ndefault = ["REED"]\n')

    with caplog.at_level(logging.ERROR):
        changed = store.reload_if_changed()

    assert not changed
    assert "read" in store.policy.decide("alice", "bob").permissions
    assert f"{policy_file}:4:" in caplog.text
    assert "keeping the last good policy" in caplog.text


def test_store_applies_new_valid_policy(store, policy_file):
    replace_file(policy_file, '[[rules]]\nowners = ["alice"]\nviewers = ["dave"]\ndefault = ["READ"]\n')

    assert store.reload_if_changed()

    assert "read" in store.policy.decide("alice", "dave").permissions
    assert not store.policy.decide("alice", "bob").permissions


def test_store_starts_closed_on_invalid_file(tmp_path, caplog):
    path = tmp_path / "policy.toml"
    path.write_text("[[rules]\n")
    store = PolicyStore(path)

    with caplog.at_level(logging.ERROR):
        store.reload_if_changed()

    assert not store.loaded
    assert not store.policy.decide("alice", "bob").permissions
    assert "an empty policy" in caplog.text


def test_store_missing_file_logged_once(tmp_path, caplog):
    store = PolicyStore(tmp_path / "absent.toml")

    with caplog.at_level(logging.ERROR):
        store.reload_if_changed()
        store.reload_if_changed()

    assert caplog.text.count("cannot be read") == 1


def test_owner_from_model_without_server():
    owner = owner_from_model({"name": "dave", "servers": {}, "last_activity": None})

    assert not owner.has_server
    assert not owner.ready


async def test_sweep_grants_and_revokes(store):
    hub = FakeHub(
        {"alice": True, "bob": True, "carol": False, "dave": False},
        shares={"alice": {"dave"}},
    )
    reconciler = Reconciler(hub, store)

    await reconciler.sweep()

    assert hub.shares["alice"] == {"bob", "carol"}
    assert ("revoke", "alice", "dave") in hub.calls


async def test_sweep_skips_owner_without_server(store):
    hub = FakeHub({"alice": False, "bob": True, "carol": True})
    reconciler = Reconciler(hub, store)

    await reconciler.sweep()

    assert "alice" not in hub.shares


async def test_sweep_continues_past_failing_owner(store, caplog):
    hub = FakeHub({"alice": True, "bob": True, "carol": True}, failing_owners={"bob"})
    reconciler = Reconciler(hub, store)

    with caplog.at_level(logging.ERROR):
        await reconciler.sweep()

    assert "Shares of bob not reconciled" in caplog.text
    assert hub.shares["alice"] == {"bob", "carol"}


async def test_ensure_viewer_creates_missing_share(store):
    hub = FakeHub({"alice": True, "bob": True, "dave": True})
    reconciler = Reconciler(hub, store)
    await reconciler.refresh_users()

    await reconciler.ensure_viewer("bob")
    await reconciler.ensure_viewer("dave")

    assert hub.calls == [("grant", "alice", "bob")]
