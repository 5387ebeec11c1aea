"""The grant store on a database that rejects writes: a real SQLite file opened read-only."""

import logging
from datetime import datetime, timedelta, timezone

import pytest

from cylc_hub.services.access.grants_store import GrantStore, GrantStoreError

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def read_only_store(tmp_path):
    """A store whose SQLite file contains one grant to carol ending in an hour, opened read-only."""
    path = tmp_path / "grants.sqlite"
    writable = GrantStore(f"sqlite:///{path}", clock=Clock(START))
    writable.put("bob", "carol", ("READ",), created_by="bob", expires_at=START + timedelta(hours=1))
    writable.engine.dispose()
    return GrantStore(f"sqlite:///file:{path}?mode=ro&uri=true", clock=Clock(START))


def test_put_on_read_only_database_raises(read_only_store, caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(GrantStoreError, match="was not stored"):
        read_only_store.put("bob", "dave", ("READ",), created_by="bob", expires_at=None)

    assert [record.viewer for record in read_only_store.grants("bob")] == ["carol"]
    assert "readonly database" in caplog.text


def test_remove_on_read_only_database_keeps_grant(read_only_store):
    with pytest.raises(GrantStoreError, match="It is still in force"):
        read_only_store.remove("bob", "carol")

    assert [record.viewer for record in read_only_store.grants("bob")] == ["carol"]


def test_failed_expiry_retried_a_minute_later(read_only_store, caplog):
    read_only_store.clock.now = START + timedelta(hours=2)

    with caplog.at_level(logging.ERROR):
        assert read_only_store.remove_expired() == []
        assert read_only_store.remove_expired() == []
        read_only_store.clock.now += timedelta(seconds=61)
        assert read_only_store.remove_expired() == []

    assert caplog.text.count("Grant not revoked") == 2
    assert read_only_store.grants("bob") == []
