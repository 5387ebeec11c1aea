"""The hub and the Cylc UI server enforce the site policy, through the real hub and proxy."""

import json

import pytest

from hubharness import workflow_names_in

pytestmark = pytest.mark.hub

READ_WORKFLOWS = "query { workflows { id name status } }"
PAUSE_DEMO = 'mutation { pause(workflows: ["~alice/demo"]) { result } }'
RESUME_DEMO = 'mutation { resume(workflows: ["~alice/demo"]) { result } }'


def test_viewer_reaches_owner_ui(hub, alice_server):
    bob = hub.login("bob")

    response = hub.open(bob, "/user/alice/cylc/")

    assert response.status_code == 200
    assert response.url.startswith(f"{hub.url}/user/alice/cylc")


def test_hub_refuses_viewer_without_read(hub, alice_server):
    dave = hub.login("dave")

    response = dave.get(f"{hub.url}/user/alice/cylc/", timeout=60)

    assert response.status_code == 403
    # The refusal comes from the hub's OAuth endpoint, not from alice's UI server.
    assert "/hub/api/oauth2/authorize" in response.url


def test_graphql_read_allowed_for_reader(hub, alice_server):
    bob = hub.login("bob")

    response = hub.graphql(bob, "alice", READ_WORKFLOWS)

    assert response.status_code == 200, response.text
    assert "demo" in workflow_names_in(response.text)


def test_graphql_pause_refused_for_reader(hub, alice_server):
    bob = hub.login("bob")

    response = hub.graphql(bob, "alice", PAUSE_DEMO)

    body = response.json()
    assert body.get("errors"), body
    assert "403" in json.dumps(body["errors"])
    assert body["data"]["pause"] is None


def test_graphql_pause_allowed_for_controller(hub, alice_server):
    carol = hub.login("carol")

    response = hub.graphql(carol, "alice", PAUSE_DEMO)

    body = response.json()
    assert not body.get("errors"), body
    assert body["data"]["pause"]["result"]

    resumed = hub.graphql(carol, "alice", RESUME_DEMO).json()
    assert not resumed.get("errors"), resumed
