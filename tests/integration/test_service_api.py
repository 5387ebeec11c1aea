"""The cylc-access JSON API and list page through the real hub, proxy and OAuth."""

import pytest
import requests

from hubharness import wait_for

pytestmark = pytest.mark.hub

SERVICE = "/services/cylc-access"


def get_viewable(hub, session):
    """GET api/viewable after the OAuth redirects that a first page visit goes through."""
    hub.open(session, f"{SERVICE}/")
    return session.get(f"{hub.url}{SERVICE}/api/viewable", timeout=60)


def test_viewable_lists_owner_for_reader(hub, alice_server):
    bob = hub.login("bob")

    # The service refreshes its listing of the hub's users at most every few seconds.
    def viewable_when_ready():
        response = get_viewable(hub, bob)
        servers = response.json()["servers"]
        return response if servers and servers[0]["ready"] else None

    response = wait_for(viewable_when_ready, 15, interval=1, message="alice shown as ready")

    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "bob"
    assert [server["owner"] for server in body["servers"]] == ["alice"]
    alice = body["servers"][0]
    assert alice["permissions"] == ["read"]
    assert alice["ready"] is True
    assert alice["url"] == "/user/alice/cylc/"
    assert alice["server"] == ""
    assert "last_activity" in alice


def test_viewable_lists_control_for_ops(hub, alice_server):
    carol = hub.login("carol")

    servers = get_viewable(hub, carol).json()["servers"]

    assert [server["owner"] for server in servers] == ["alice"]
    assert "pause" in servers[0]["permissions"]
    assert "read" in servers[0]["permissions"]


def test_viewable_empty_for_dave(hub, alice_server):
    dave = hub.login("dave")

    response = get_viewable(hub, dave)

    assert response.status_code == 200
    assert response.json() == {"user": "dave", "total": 0, "servers": []}


def test_viewable_without_login_is_403(hub):
    response = requests.get(f"{hub.url}{SERVICE}/api/viewable", timeout=30)

    assert response.status_code == 403


def test_list_page_without_login_redirects(hub):
    response = requests.get(f"{hub.url}{SERVICE}/", timeout=30, allow_redirects=False)

    assert response.status_code == 302
    assert "/hub/api/oauth2/authorize" in response.headers["Location"]


def test_list_page_links_owner(hub, alice_server):
    bob = hub.login("bob")

    page = hub.open(bob, f"{SERVICE}/")

    assert page.status_code == 200
    assert f'href="{SERVICE}/open/alice"' in page.text
    assert "dave" not in page.text


def test_permissions_api_for_owner(hub, alice_server):
    hub.open(alice_server, f"{SERVICE}/")

    response = alice_server.get(
        f"{hub.url}{SERVICE}/api/permissions/alice", params={"user": "carol"}, timeout=30
    )

    assert response.status_code == 200
    body = response.json()
    assert body["owner"] == "alice"
    assert body["user"] == "carol"
    assert "pause" in body["permissions"]


def test_permissions_api_refuses_other_user(hub, alice_server):
    bob = hub.login("bob")
    hub.open(bob, f"{SERVICE}/")

    response = bob.get(
        f"{hub.url}{SERVICE}/api/permissions/alice", params={"user": "bob"}, timeout=30
    )

    assert response.status_code == 403


def test_users_cannot_share_their_own_server(hub, alice_server):
    response = hub.api(alice_server, "POST", "/shares/alice/", json={"user": "dave"})

    assert response.status_code == 403


def test_policy_reload_grants_then_revokes(hub, alice_server):
    dave = hub.login("dave")
    assert dave.get(f"{hub.url}/user/alice/cylc/", timeout=60).status_code == 403

    text = hub.policy_path.read_text()
    hub.policy_path.write_text(text + '\n[[rules]]\nowners = ["alice"]\nviewers = ["dave"]\ndefault = ["READ"]\n')
    try:
        wait_for(
            lambda: hub.open(dave, "/user/alice/cylc/").status_code == 200,
            30,
            interval=1,
            message="dave's share after the policy allowed him",
        )
    finally:
        hub.policy_path.write_text(text)

    # A new session each time: alice's server keeps an earlier session's login for its cache time.
    wait_for(
        lambda: hub.login("dave").get(f"{hub.url}/user/alice/cylc/", timeout=60).status_code == 403,
        30,
        interval=1,
        message="the service to revoke dave's access after the policy reverted",
    )


def test_bad_policy_keeps_last_good(hub, alice_server):
    text = hub.policy_path.read_text()
    hub.policy_path.write_text(text + '\n[[rules]]\nowners = ["*"]\nviewers = ["*"]\ndefault = ["REED"]\n')
    try:
        wait_for(
            lambda: "rejected, keeping the last good policy" in hub.log_text(),
            30,
            message="the service to reject the policy",
        )
        log = hub.log_text()
        assert f"{hub.policy_path}:" in log
        assert "REED" in log

        bob = hub.login("bob")
        servers = get_viewable(hub, bob).json()["servers"]
        assert [server["owner"] for server in servers] == ["alice"]
    finally:
        hub.policy_path.write_text(text)
