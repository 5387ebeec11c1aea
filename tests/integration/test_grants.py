"""Owners' grants through a real hub: the page, the JSON API, the shares and a service restart.

These tests start their own hub with a short sweep interval and a test
service whose token may create shares, standing in for someone who shares
a server outside the policy.
"""

import os
import re
import secrets
import signal
import subprocess
import time

import pytest
import requests

from hubharness import ROOT, start_hub, stop_hub, wait_for

pytestmark = pytest.mark.hub

SERVICE = "/services/cylc-access"
SWEEP_SECONDS = 3

# bob may let carol read and control his UI, but gives her nothing by default;
# dave has no rule at all.
POLICY = """
[[rules]]
owners = ["bob"]
viewers = ["carol"]
default = []
limit = ["READ", "CONTROL"]
"""

TEST_CONFIG = """
import os
load_subconfig(os.environ["CYLC_HUB_BASE_CONFIG"])
c.Authenticator.admin_users = {"alice"}
c.JupyterHub.services.append(
    {"name": "test-sharer", "api_token": os.environ["CYLC_HUB_TEST_SHARER_TOKEN"]}
)
c.JupyterHub.load_roles.append(
    {
        "name": "test-sharer",
        "services": ["test-sharer"],
        "scopes": ["shares", "read:shares", "access:servers", "read:users:name"],
    }
)
"""


@pytest.fixture(scope="module")
def grants_hub(password, tmp_path_factory):
    directory = tmp_path_factory.mktemp("grants-hub")
    policy = directory / "policy.toml"
    policy.write_text(POLICY)
    config = directory / "jupyterhub_config.py"
    config.write_text(TEST_CONFIG)
    token = secrets.token_hex(16)

    hub = start_hub(
        password,
        policy_source=policy,
        config=config,
        extra_env={
            "CYLC_HUB_BASE_CONFIG": str(ROOT / "jupyterhub_config.py"),
            "CYLC_HUB_TEST_SHARER_TOKEN": token,
            "CYLC_HUB_SWEEP_INTERVAL": str(SWEEP_SECONDS),
        },
    )
    hub.sharer_token = token
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def bob(grants_hub):
    """bob's session, with his UI server running."""
    session = grants_hub.login("bob")
    response = grants_hub.api(session, "POST", "/users/bob/server")
    assert response.status_code in (201, 202), response.text
    grants_hub.wait_ready(session, "bob")
    grants_hub.open(session, f"{SERVICE}/grants")
    return session


def xsrf_of(page):
    return re.search(r'name="_xsrf" value="([^"]*)"', page.text).group(1)


def grant_on_page(hub, session, **fields):
    page = hub.open(session, f"{SERVICE}/grants")
    assert page.status_code == 200, page.text
    form = {"_xsrf": xsrf_of(page), "action": "grant", **fields}
    return session.post(f"{hub.url}{SERVICE}/grants", data=form, timeout=60)


def revoke_on_page(hub, session, viewer):
    page = hub.open(session, f"{SERVICE}/grants")
    form = {"_xsrf": xsrf_of(page), "action": "revoke", "viewer": viewer}
    return session.post(f"{hub.url}{SERVICE}/grants", data=form, timeout=60)


def api_headers(hub, session):
    page = hub.open(session, f"{SERVICE}/grants")
    return {"X-XSRFToken": xsrf_of(page)}


def viewable_owners(hub, session):
    hub.open(session, f"{SERVICE}/")
    servers = session.get(f"{hub.url}{SERVICE}/api/viewable", timeout=60).json()["servers"]
    return {server["owner"]: server["permissions"] for server in servers}


def ui_status(hub, user):
    """Return the status of ``user``'s request for bob's UI, in a fresh session.

    A fresh session matters: bob's UI server caches an earlier login of the
    same browser for a few minutes, so only the hub's share decides here.
    """
    return hub.open(hub.login(user), "/user/bob/cylc/").status_code


def test_grant_on_page_lets_carol_in(grants_hub, bob):
    hub = grants_hub
    carol = hub.login("carol")
    assert "bob" not in viewable_owners(hub, carol)
    assert ui_status(hub, "carol") == 403

    response = grant_on_page(hub, bob, viewer="carol", permissions=["READ", "CONTROL"])
    granted_at = time.monotonic()

    assert response.status_code == 200, response.text
    assert "Granted READ, CONTROL to carol." in response.text
    owners = viewable_owners(hub, carol)
    assert time.monotonic() - granted_at < 1
    assert "pause" in owners["bob"]
    assert "read" in owners["bob"]
    assert ui_status(hub, "carol") == 200
    assert re.search(r"Grant stored: id=\d+ owner=bob viewer=carol permissions=READ,CONTROL", hub.log_text())

    response = revoke_on_page(hub, bob, "carol")

    assert response.status_code == 200
    assert "Revoked the grant to carol." in response.text
    wait_for(lambda: ui_status(hub, "carol") == 403, SWEEP_SECONDS, interval=0.5, message="carol refused")
    assert "bob" not in viewable_owners(hub, carol)
    assert "Grant revoked: id=" in hub.log_text()


def test_grant_above_limit_names_limit(grants_hub, bob):
    response = grant_on_page(grants_hub, bob, viewer="carol", permissions=["ALL"])

    assert response.status_code == 400
    assert "Cannot grant broadcast to carol" in response.text
    assert "READ, CONTROL (from rule 1 (line 2))" in response.text


def test_grant_form_without_xsrf_rejected(grants_hub, bob):
    response = bob.post(
        f"{grants_hub.url}{SERVICE}/grants",
        data={"action": "grant", "viewer": "carol", "permissions": "READ"},
        timeout=60,
    )

    assert response.status_code == 403
    assert "_xsrf" in response.text
    assert grants_api(grants_hub, bob)["grants"] == []


def grants_api(hub, session):
    response = session.get(f"{hub.url}{SERVICE}/api/grants/bob", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_api_grant_requires_xsrf_with_cookie(grants_hub, bob):
    url = f"{grants_hub.url}{SERVICE}/api/grants/bob"

    rejected = bob.post(url, json={"viewer": "carol", "permissions": ["READ"]}, timeout=60)
    assert rejected.status_code == 403

    headers = api_headers(grants_hub, bob)
    invalid = bob.post(url, json={"viewer": "carol", "permissions": ["READ"], "duration": "8 weeks"}, headers=headers, timeout=60)
    assert invalid.status_code == 400
    assert "'8 weeks'" in invalid.json()["message"]

    created = bob.post(url, json={"viewer": "carol", "permissions": ["READ"]}, headers=headers, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json()["grant"]["viewer"] == "carol"

    deleted = bob.delete(f"{url}/carol", headers=headers, timeout=60)
    assert deleted.status_code == 200
    assert bob.delete(f"{url}/carol", headers=headers, timeout=60).status_code == 404


def test_api_refuses_other_owner(grants_hub, bob):
    carol = grants_hub.login("carol")
    headers = api_headers(grants_hub, carol)

    response = carol.post(
        f"{grants_hub.url}{SERVICE}/api/grants/bob",
        json={"viewer": "carol", "permissions": ["READ"]},
        headers=headers,
        timeout=60,
    )

    assert response.status_code == 403
    assert carol.get(f"{grants_hub.url}{SERVICE}/api/grants/bob", timeout=60).status_code == 403


def test_expired_grant_revoked(grants_hub, bob):
    hub = grants_hub
    response = bob.post(
        f"{hub.url}{SERVICE}/api/grants/bob",
        json={"viewer": "carol", "permissions": ["READ"], "duration": "4s"},
        headers=api_headers(hub, bob),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    assert ui_status(hub, "carol") == 200

    wait_for(
        lambda: "Grant expired and revoked" in hub.log_text(),
        4 + SWEEP_SECONDS,
        interval=0.5,
        message="the grant to expire",
    )

    assert ui_status(hub, "carol") == 403
    assert grants_api(hub, bob)["grants"] == []


def test_share_made_outside_policy_revoked(grants_hub, bob):
    hub = grants_hub
    headers = {"Authorization": f"token {hub.sharer_token}"}
    made = requests.post(f"{hub.url}/hub/api/shares/bob/", json={"user": "dave"}, headers=headers, timeout=30)
    assert made.status_code == 200, made.text

    wait_for(
        lambda: "Share revoked: bob's server from dave" in hub.log_text(),
        2 * SWEEP_SECONDS,
        interval=0.5,
        message="the sweep to revoke dave's share",
    )

    shares = requests.get(f"{hub.url}/hub/api/shares/bob", headers=headers, timeout=30).json()
    assert [share for share in shares["items"] if (share.get("user") or {}).get("name") == "dave"] == []
    assert "made outside the policy" in hub.log_text()
    assert ui_status(hub, "dave") == 403


def service_pid(hub):
    """Return the PID of the cylc-access process that this test's hub started."""
    output = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(hub.process.pid)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pids = [int(line.split()[0]) for line in output.splitlines() if "cylc_hub.services.access" in line]
    assert len(pids) == 1, output
    return pids[0]


def test_grants_survive_service_restart(grants_hub, bob):
    hub = grants_hub
    headers = api_headers(hub, bob)
    created = bob.post(
        f"{hub.url}{SERVICE}/api/grants/bob",
        json={"viewer": "carol", "permissions": ["READ", "pause"]},
        headers=headers,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    starts = hub.log_text().count("cylc-access listening on")

    os.kill(service_pid(hub), signal.SIGTERM)
    wait_for(
        lambda: hub.log_text().count("cylc-access listening on") > starts,
        90,
        interval=1,
        message="the hub to restart cylc-access",
    )

    # The restarted service signs cookies with a new secret: log in to it again.
    wait_for(
        lambda: hub.open(bob, f"{SERVICE}/grants").status_code == 200,
        30,
        interval=1,
        message="the restarted service to answer",
    )
    grants = grants_api(hub, bob)["grants"]
    assert [(grant["viewer"], grant["permissions"]) for grant in grants] == [("carol", ["READ", "pause"])]
    owners = viewable_owners(hub, hub.login("carol"))
    assert owners["bob"] == ["pause", "read"]


def test_admin_explains_pair(grants_hub, bob):
    hub = grants_hub
    alice = hub.login("alice")
    hub.open(alice, f"{SERVICE}/explain")

    response = alice.get(
        f"{hub.url}{SERVICE}/api/explain", params={"owner": "bob", "user": "carol"}, timeout=30
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["owner"] == "bob"
    assert body["user"] == "carol"
    assert body["matched"][0]["rule"] == 1
    assert body["reasons"]
    page = hub.open(alice, f"{SERVICE}/explain?owner=bob&user=dave")
    assert page.status_code == 200
    assert "No rule matches this owner and viewer" in page.text


def test_explain_refuses_non_admin(grants_hub, bob):
    hub = grants_hub
    hub.open(bob, f"{SERVICE}/grants")

    response = bob.get(f"{hub.url}{SERVICE}/api/explain", params={"owner": "bob", "user": "carol"}, timeout=30)

    assert response.status_code == 403


def test_authorization_api_includes_grants(grants_hub, bob):
    hub = grants_hub
    headers = api_headers(hub, bob)
    created = bob.post(
        f"{hub.url}{SERVICE}/api/grants/bob",
        json={"viewer": "carol", "permissions": ["READ", "hold"]},
        headers=headers,
        timeout=60,
    )
    assert created.status_code == 201, created.text

    response = bob.get(f"{hub.url}{SERVICE}/api/authorization/bob", timeout=30)

    assert response.status_code == 200, response.text
    entry = response.json()["site_authorization"]["bob"]["carol"]
    assert entry == {"default": ["hold", "read"], "limit": ["hold", "read"]}
    carol = hub.login("carol")
    hub.open(carol, f"{SERVICE}/")
    assert carol.get(f"{hub.url}{SERVICE}/api/authorization/bob", timeout=30).status_code == 403


def restart_bob(hub, session):
    hub.stop_server(session, "bob")
    response = hub.api(session, "POST", "/users/bob/server")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(session, "bob")


def test_grant_reaches_ui_after_restart(grants_hub, bob):
    hub = grants_hub
    headers = api_headers(hub, bob)
    url = f"{hub.url}{SERVICE}/api/grants/bob"
    created = bob.post(url, json={"viewer": "carol", "permissions": ["READ"]}, headers=headers, timeout=60)
    assert created.status_code == 201, created.text

    try:
        restart_bob(hub, bob)
        carol = hub.login("carol")

        read = hub.graphql(carol, "bob", "query { workflows { id } }").json()
        pause = hub.graphql(carol, "bob", 'mutation { pause(workflows: ["~bob/none"]) { result } }').json()

        assert not read.get("errors"), read
        assert "403" in str(pause.get("errors")), pause
        assert "cylc-access gave" not in hub.log_text()
    finally:
        bob.delete(f"{url}/carol", headers=api_headers(hub, bob), timeout=60)
