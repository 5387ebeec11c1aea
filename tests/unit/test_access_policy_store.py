"""The policy store against files that are being written in place."""

import logging
import os

from cylc_hub.services.access.policy_store import PolicyStore

GOOD = '[[rules]]\nowners = ["alice"]\nviewers = ["bob"]\ndefault = ["READ"]\n'


class Clock:
    """A wall clock that a test moves by hand."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def write_in_place(path, text, mtime):
    with open(path, "w") as stream:
        stream.write(text)
    os.utime(path, (mtime, mtime))


def test_store_waits_for_file_to_settle(tmp_path):
    path = tmp_path / "policy.toml"
    write_in_place(path, GOOD, 1000)
    clock = Clock(1000.5)
    store = PolicyStore(path, settle=1.0, clock=clock)

    assert not store.reload_if_changed()
    assert not store.loaded

    clock.now = 1001.0
    assert store.reload_if_changed()
    assert "read" in store.policy.decide("alice", "bob").permissions


def test_store_loads_at_start_unsettled(tmp_path):
    path = tmp_path / "policy.toml"
    write_in_place(path, GOOD, 1000)
    store = PolicyStore(path, settle=5.0, clock=Clock(1000.0))

    assert store.reload_if_changed(settle=False)


def test_store_rejects_empty_file(tmp_path, caplog):
    path = tmp_path / "policy.toml"
    write_in_place(path, GOOD, 1000)
    store = PolicyStore(path)
    assert store.reload_if_changed()

    write_in_place(path, " \n", 1001)
    with caplog.at_level(logging.ERROR):
        changed = store.reload_if_changed()

    assert not changed
    assert "read" in store.policy.decide("alice", "bob").permissions
    assert f"{path}:1: the policy file is empty" in caplog.text


def test_store_accepts_explicit_empty_rules(tmp_path):
    path = tmp_path / "policy.toml"
    write_in_place(path, GOOD, 1000)
    store = PolicyStore(path)
    assert store.reload_if_changed()

    write_in_place(path, "rules = []\n", 1001)

    assert store.reload_if_changed()
    assert not store.policy.decide("alice", "bob").permissions
