"""The OpenAPI document of the cylc-access JSON API, and fuzzing the real service with it.

The fuzz tests send schemathesis' generated requests through the hub's proxy
with API tokens of a real user (bob) and a real admin (alice), and check
every response against the document.
"""

import importlib.resources
import os

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from tornado import web
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cylc_hub.services.access.app import API_ROUTES

from accessharness import SERVICE, create_token, start_access_hub, start_server
from hubharness import stop_hub

pytestmark = pytest.mark.hub

POLICY = """
[groups]
ops = ["carol"]

[[rules]]
owners = ["alice", "bob"]
viewers = ["group:ops", "dave"]
default = ["READ"]
limit = ["READ", "CONTROL"]
"""

# Generated requests per token and mode; each request goes through the real proxy.
EXAMPLES = int(os.environ.get("CYLC_ACCESS_FUZZ_EXAMPLES", "300"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def load_document():
    """Return the OpenAPI document shipped in the package, parsed."""
    text = importlib.resources.files("cylc_hub.services.access").joinpath("openapi.yaml").read_text()
    return yaml.safe_load(text)


def service_routes():
    """Return ``{path: methods}`` of the service's JSON API handlers, in OpenAPI's path form."""
    routes = {}
    for pattern, handler in API_ROUTES:
        path = "/" + pattern.replace("([^/]+)/([^/]+)", "{owner}/{viewer}").replace("([^/]+)", "{owner}")
        routes[path] = {
            method
            for method in ("get", "post", "put", "patch", "delete")
            if getattr(handler, method) is not getattr(web.RequestHandler, method)
        }
    return routes


def test_openapi_document_valid():
    document = load_document()

    schemathesis.openapi.from_dict(document).validate()

    described = {
        path: set(operations) - {"parameters"} for path, operations in document["paths"].items()
    }
    assert described == service_routes()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            assert "403" in operation["responses"], (method, path)


@pytest.fixture(scope="module")
def fuzz_hub(password, tmp_path_factory):
    hub = start_access_hub(password, tmp_path_factory.mktemp("openapi-hub"), POLICY)
    try:
        alice = hub.login("alice")
        bob = hub.login("bob")
        start_server(hub, bob, "bob")
        hub.tokens = {
            "alice": create_token(hub, alice, "alice", "schemathesis"),
            "bob": create_token(hub, bob, "bob", "schemathesis"),
        }
        yield hub
    finally:
        stop_hub(hub)


def fuzz(hub, token, mode, checks, path_parameters=None):
    """Send ``EXAMPLES`` generated requests with ``token``; return the status counts.

    ``path_parameters`` fixes path parameters, such as the owner, for every request.
    """
    schema = schemathesis.openapi.from_dict(load_document())
    base_url = f"{hub.url}{SERVICE}"
    statuses = {}
    strategy = schema.as_strategy(
        generation_mode=mode,
        headers={"Authorization": f"token {token}"},
        path_parameters=path_parameters,
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=base_url, timeout=60)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=checks)

    run()
    return statuses


@pytest.mark.parametrize("user", ["bob", "alice"])
def test_fuzzed_api_conforms(fuzz_hub, user, reliability):
    token = fuzz_hub.tokens[user]
    own = {"owner": user}
    statuses = fuzz(fuzz_hub, token, GenerationMode.POSITIVE, CHECKS)
    for status, count in fuzz(fuzz_hub, token, GenerationMode.POSITIVE, CHECKS, own).items():
        statuses[status] = statuses.get(status, 0) + count
    invalid = fuzz(fuzz_hub, token, GenerationMode.NEGATIVE, [not_a_server_error], own)
    print(user, "valid requests by status:", statuses, "invalid requests by status:", invalid)

    assert sum(statuses.values()) >= 2 * EXAMPLES
    assert 200 in statuses
    assert not [status for status in {**statuses, **invalid} if status >= 500]
    reliability.record(
        "hostile input",
        f"Fuzzed every operation of openapi.yaml with schemathesis through the real hub and "
        f"proxy with {user}'s API token ({'an admin' if user == 'alice' else 'a user'}), "
        "with requests valid by the document and with invalid ones.",
        "No response was a server error, and every response to a valid request had a "
        "documented status, content type and body schema.",
        valid_requests=sum(statuses.values()),
        invalid_requests=sum(invalid.values()),
    )


# Requests that random data rarely makes valid: each is (token's user, operationId,
# Case arguments, expected status).
LIFECYCLE = [
    ("bob", "createGrant", {"path_parameters": {"owner": "bob"}, "body": {"viewer": "carol", "permissions": ["READ"]}}, 201),
    ("bob", "createGrantForViewer", {"path_parameters": {"owner": "bob", "viewer": "dave"}, "body": {"permissions": "READ", "duration": "8h"}}, 201),
    ("bob", "getGrant", {"path_parameters": {"owner": "bob", "viewer": "dave"}}, 200),
    ("bob", "listGrants", {"path_parameters": {"owner": "bob"}}, 200),
    ("bob", "getPermissions", {"path_parameters": {"owner": "bob"}, "query": {"user": "carol"}}, 200),
    ("bob", "getAuthorization", {"path_parameters": {"owner": "bob"}}, 200),
    ("bob", "listViewable", {"query": {"q": "b", "limit": 1}}, 200),
    ("alice", "explainDecision", {"query": {"owner": "bob", "user": "dave"}}, 200),
    ("alice", "revokeGrant", {"path_parameters": {"owner": "bob", "viewer": "dave"}}, 200),
    ("bob", "revokeGrant", {"path_parameters": {"owner": "bob", "viewer": "dave"}}, 404),
    ("bob", "revokeGrantWithoutViewer", {"path_parameters": {"owner": "bob"}}, 400),
    ("bob", "revokeGrant", {"path_parameters": {"owner": "bob", "viewer": "carol"}}, 200),
    ("bob", "getGrant", {"path_parameters": {"owner": "bob", "viewer": "carol"}}, 404),
]


def test_grant_lifecycle_conforms(fuzz_hub):
    schema = schemathesis.openapi.from_dict(load_document())
    base_url = f"{fuzz_hub.url}{SERVICE}"

    for user, operation_id, arguments, expected in LIFECYCLE:
        case = schema.find_operation_by_id(operation_id).Case(
            headers={"Authorization": f"token {fuzz_hub.tokens[user]}"}, **arguments
        )
        response = case.call(base_url=base_url, timeout=60)

        assert response.status_code == expected, (operation_id, response.text)
        case.validate_response(response, checks=CHECKS)
