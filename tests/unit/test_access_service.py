"""cylc-access parts without a hub: the policy store and the reconciler against a fake hub API."""

import logging
import os

import pytest
from traitlets import TraitError

from cylc_hub.services.access.app import CylcAccessService
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
    """A stand-in for the hub API that records the shares and groups it is asked to change."""

    def __init__(self, users, shares=None, failing_owners=(), slots=4):
        self.users = users
        self.shares = {owner: set(viewers) for owner, viewers in (shares or {}).items()}
        self.group_shares = {}
        self.slots = slots
        # The slot groups exist from the start, as jupyterhub_config.py's load_groups makes them.
        self.groups = {
            f"cylc-access-{slot}-{kind}": set() for slot in range(slots) for kind in ("viewers", "owners")
        }
        self.failing_owners = set(failing_owners)
        self.calls = []

    def viewers_of(self, owner):
        """Return the users that the shares of ``owner``'s server let in, through groups too."""
        viewers = set(self.shares.get(owner, ()))
        for group in self.group_shares.get(owner, ()):
            viewers |= self.groups[group]
        # The slot roles: cylc-access-N-viewers may access servers of cylc-access-N-owners.
        for slot in range(self.slots):
            if owner in self.groups[f"cylc-access-{slot}-owners"]:
                viewers |= self.groups[f"cylc-access-{slot}-viewers"]
        return viewers - {owner}

    def share_count(self):
        """Return the user shares plus the slot group memberships."""
        return sum(map(len, self.shares.values())) + sum(map(len, self.groups.values()))

    async def list_users(self):
        return [
            {
                "name": name,
                "servers": {"": {"ready": True}} if has_server else {},
                "groups": sorted(group for group, members in self.groups.items() if name in members),
            }
            for name, has_server in self.users.items()
        ]

    async def list_shares(self, owner):
        if owner in self.failing_owners:
            raise HubAPIError("GET", f"/shares/{owner}", 500, "boom")
        return [
            {"user": {"name": viewer}, "group": None, "server": {"name": ""}}
            for viewer in sorted(self.shares.get(owner, ()))
        ] + [
            {"user": None, "group": {"name": group}, "server": {"name": ""}}
            for group in sorted(self.group_shares.get(owner, ()))
        ]

    async def grant_share(self, owner, viewer, server_name=""):
        self.calls.append(("grant", owner, viewer))
        self.shares.setdefault(owner, set()).add(viewer)

    async def revoke_share(self, owner, viewer, server_name=""):
        self.calls.append(("revoke", owner, viewer))
        self.shares.get(owner, set()).discard(viewer)

    async def grant_group_share(self, owner, group, server_name=""):
        self.calls.append(("grant-group", owner, group))
        self.group_shares.setdefault(owner, set()).add(group)

    async def revoke_group_share(self, owner, group, server_name=""):
        self.calls.append(("revoke-group", owner, group))
        self.group_shares.get(owner, set()).discard(group)

    async def list_groups(self):
        return [{"name": name, "users": sorted(members)} for name, members in self.groups.items()]

    async def create_group(self, name, users):
        self.groups[name] = set(users)

    async def delete_group(self, name):
        del self.groups[name]
        for groups in self.group_shares.values():
            groups.discard(name)

    async def add_group_members(self, name, users):
        self.groups[name] |= set(users)

    async def remove_group_members(self, name, users):
        self.groups[name] -= set(users)


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
    reconciler = Reconciler(hub, store, slots=hub.slots)

    await reconciler.sweep()

    assert hub.viewers_of("alice") == {"bob", "carol"}
    assert ("revoke", "alice", "dave") in hub.calls


async def test_sweep_skips_owner_without_server(store):
    hub = FakeHub({"alice": False, "bob": True, "carol": True})
    reconciler = Reconciler(hub, store, slots=hub.slots)

    await reconciler.sweep()

    assert hub.viewers_of("alice") == set()


async def test_sweep_continues_past_failing_owner(store, caplog):
    hub = FakeHub({"alice": True, "bob": True, "carol": True}, failing_owners={"bob"})
    reconciler = Reconciler(hub, store, slots=hub.slots)

    with caplog.at_level(logging.ERROR):
        await reconciler.sweep()

    assert "Shares of bob not reconciled" in caplog.text
    assert hub.viewers_of("alice") == {"bob", "carol"}


async def test_ensure_viewer_creates_missing_share(store):
    hub = FakeHub({"alice": True, "bob": True, "dave": True})
    reconciler = Reconciler(hub, store, slots=hub.slots)
    await reconciler.refresh_users()

    await reconciler.ensure_viewer("bob")
    await reconciler.ensure_viewer("dave")

    assert hub.viewers_of("alice") == {"bob"}
    assert [call for call in hub.calls if call[1] != "alice"] == []


async def test_sweep_revokes_group_share(store, caplog):
    hub = FakeHub({"alice": True, "bob": False, "dave": False})
    hub.groups["everyone"] = {"bob", "dave"}
    hub.group_shares["alice"] = {"everyone"}
    reconciler = Reconciler(hub, store, slots=hub.slots)

    with caplog.at_level(logging.WARNING):
        await reconciler.sweep()

    assert hub.group_shares["alice"] == set()
    assert hub.viewers_of("alice") == {"bob"}
    assert "Share revoked: alice's server from group everyone (made outside the policy)" in caplog.text


@pytest.mark.parametrize(
    "option, value, rule",
    [
        ("policy_settle_time", -1, "should not be less than 0"),
        ("policy_check_interval", 0, "should not be less than 0.1"),
        ("sweep_interval", 0, "should not be less than 1"),
        ("hub_concurrency", 0, "should not be less than 1"),
        ("access_slots", -2, "should not be less than 0"),
        ("sweep_interval", "abc", "expected a float"),
    ],
)
def test_service_option_out_of_range_named(option, value, rule):
    with pytest.raises(TraitError) as caught:
        CylcAccessService(**{option: value})

    assert f"'{option}'" in str(caught.value)
    assert rule in str(caught.value)
