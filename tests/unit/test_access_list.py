"""The list's pure parts: status, access summary and page bounds."""

import pytest

from cylc_hub.policy import ALL_PERMISSIONS, PERMISSION_GROUPS
from cylc_hub.services.access.handlers import access_summary, page_bounds, server_status
from cylc_hub.services.access.reconcile import owner_from_model


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (None, "stopped"),
        ({"ready": False, "pending": "spawn"}, "pending"),
        ({"ready": True, "pending": None}, "running"),
        ({"ready": False, "pending": None}, "stopped"),
    ],
)
def test_server_status(server, expected):
    model = {"name": "alice", "servers": {"": server} if server else {}}

    assert server_status(owner_from_model(model)) == expected


@pytest.mark.parametrize(
    ("permissions", "expected"),
    [
        (ALL_PERMISSIONS, "all"),
        (PERMISSION_GROUPS["CONTROL"] | {"read"}, "control"),
        (frozenset({"read", "pause"}), "read"),
        (frozenset({"read"}), "read"),
    ],
)
def test_access_summary(permissions, expected):
    assert access_summary(permissions) == expected


@pytest.mark.parametrize(
    ("total", "page", "expected"),
    [
        (0, 1, (1, 1, 0)),
        (25, 1, (1, 3, 0)),
        (25, 3, (3, 3, 20)),
        (25, 9, (3, 3, 20)),
        (10, 0, (1, 1, 0)),
    ],
)
def test_page_bounds(total, page, expected):
    assert page_bounds(total, page, 10) == expected
