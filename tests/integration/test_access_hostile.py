"""Hostile input to cylc-access through the real hub: forged requests, hostile names, probing.

Requests come from tokens and logged-in sessions of real hub users. The
hostile names are hub users and hub groups created through the hub's API,
and a policy group, all named in the policy.
"""

import json
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from accessharness import (
    SERVICE,
    create_hub_user,
    create_token,
    hub_api,
    start_access_hub,
    token_client,
    xsrf_of,
)
from hubharness import stop_hub

pytestmark = pytest.mark.hub

# JupyterHub lower-cases user names and rejects "/", so the names avoid both.
OWNER_HTML = "<img src=x onerror=alert(\"o'w\")>"
OWNER_UNICODE = "zoë-日本-ünï"
VIEWER_HTML = '"><svg onload=alert(1)>&amp;'
HUB_GROUP = "<i onclick='x'>hub&\"grp"
POLICY_GROUP = "<b class=\"x\">ops&'q"
HOSTILE_NAMES = (OWNER_HTML, OWNER_UNICODE, VIEWER_HTML, HUB_GROUP, POLICY_GROUP)

# bob and the hostile viewers may read the hostile owners. bob may grant
# READ to the hostile viewers on his own server. erin may view nobody's.
POLICY = f"""
[settings]
jupyterhub_groups = true

[groups]
{json.dumps(POLICY_GROUP)} = ["carol"]

[[rules]]
owners = {json.dumps([OWNER_HTML, OWNER_UNICODE])}
viewers = {json.dumps(["bob", VIEWER_HTML, "group:" + POLICY_GROUP, "group:" + HUB_GROUP])}
default = ["READ"]

[[rules]]
owners = ["bob"]
viewers = {json.dumps([VIEWER_HTML, OWNER_UNICODE, "carol"])}
default = []
limit = ["READ"]
"""


@pytest.fixture(scope="module")
def hostile_hub(password, tmp_path_factory):
    hub = start_access_hub(password, tmp_path_factory.mktemp("hostile-hub"), POLICY)
    try:
        admin = hub.login("alice")
        hub.admin_token = create_token(hub, admin, "alice", "hostile tests")
        for name in (OWNER_HTML, OWNER_UNICODE, VIEWER_HTML, "erin"):
            response = create_hub_user(hub, hub.admin_token, name)
            assert response.status_code == 201, response.text
        response = hub_api(
            hub, hub.admin_token, "POST", f"/groups/{quote(HUB_GROUP, safe='')}",
            json={"users": ["dave"]},
        )
        assert response.status_code == 201, response.text
        hub.tokens = {
            user: create_token(hub, admin, user, "hostile tests")
            for user in ("bob", "carol", "erin", VIEWER_HTML)
        }
        hub.tokens["alice"] = hub.admin_token
        yield hub
    finally:
        stop_hub(hub)


def service_get(hub, user, path, **kwargs):
    return token_client(hub.tokens[user]).get(
        f"{hub.url}{SERVICE}/{path}", timeout=60, allow_redirects=False, **kwargs
    )


class PageContent(HTMLParser):
    """The element tags, the text and the attribute values of an HTML page."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = set()
        self.strings = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.strings.extend(value for _, value in attrs if value)

    def handle_data(self, data):
        self.strings.append(data)

    def contains(self, name):
        return any(name in string for string in self.strings)


def assert_escaped(page, *names):
    """Assert that ``page`` shows each name as text and that none became markup."""
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    content = PageContent(page.text)
    for name in names:
        if set(name) & set("<>&\"'"):
            assert name not in page.text, f"{name!r} appears unescaped"
        assert content.contains(name), f"{name!r} is not shown"
    assert not content.tags & {"img", "svg", "script"}, content.tags


def test_xsrf_forged_requests_rejected(hostile_hub, reliability):
    hub = hostile_hub
    bob = hub.login("bob")
    page = hub.open(bob, f"{SERVICE}/grants")
    api = f"{hub.url}{SERVICE}/api/grants/bob"
    foreign = {"Origin": "http://evil.example", "Referer": "http://evil.example/form"}
    forged = [
        ("POST", f"{hub.url}{SERVICE}/grants", {"data": {"action": "grant", "viewer": "carol", "permissions": "READ"}}),
        ("POST", f"{hub.url}{SERVICE}/grants", {"data": {"action": "revoke", "viewer": "carol"}}),
        ("POST", api, {"json": {"viewer": "carol", "permissions": ["READ"]}}),
        ("POST", f"{api}/carol", {"json": {"permissions": ["READ"]}}),
        ("DELETE", f"{api}/carol", {}),
    ]
    token = token_client(hub.tokens["bob"])
    granted = token.post(api, json={"viewer": "carol", "permissions": ["READ"]}, timeout=60)
    assert granted.status_code == 201, granted.text

    refused = 0
    for method, url, body in forged:
        for headers in ({}, foreign, {**foreign, "X-XSRFToken": "forged"}):
            response = bob.request(method, url, headers=headers, timeout=60, **body)
            assert response.status_code == 403, (method, url, headers, response.text)
            refused += 1
    for method in ("PUT", "PATCH"):
        response = bob.request(method, api, headers=foreign, json={"viewer": "dave"}, timeout=60)
        assert response.status_code == 403, (method, response.text)
        refused += 1
        response = token.request(method, api, json={"viewer": "dave"}, timeout=60)
        assert response.status_code == 405, (method, response.text)

    # The other routes change nothing, so they take no POST, PUT, PATCH or DELETE at all.
    for path in ("", "open/carol", "explain", "api/viewable", "api/permissions/bob", "api/explain", "api/authorization/bob"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = bob.request(method, f"{hub.url}{SERVICE}/{path}", headers=foreign, timeout=60)
            assert response.status_code in (403, 405), (method, path, response.status_code)
            refused += 1

    grants = token.get(api, timeout=60).json()["grants"]
    assert [(grant["viewer"], grant["permissions"]) for grant in grants] == [("carol", ["READ"])]

    with_xsrf = bob.delete(f"{api}/carol", headers={"X-XSRFToken": xsrf_of(page)}, timeout=60)
    assert with_xsrf.status_code == 200, with_xsrf.text
    from_foreign_client = token.post(api, headers=foreign, json={"viewer": "carol", "permissions": ["READ"]}, timeout=60)
    assert from_foreign_client.status_code == 201, from_foreign_client.text
    assert token.delete(f"{api}/carol", headers=foreign, timeout=60).status_code == 200
    reliability.record(
        "hostile input",
        "Sent every POST and DELETE of the grants page and API with bob's login cookie "
        "but without a valid XSRF token, from a foreign Origin and Referer too, and every "
        "write method to the other routes.",
        "Each forged request got 403 or 405 and changed no grant (PUT and PATCH get 405 "
        "with a token too); the same "
        "requests with the XSRF token or with an API token from a foreign Origin worked.",
        forged_requests=refused,
    )


def test_hostile_names_escaped(hostile_hub, reliability):
    hub = hostile_hub
    bob_token = token_client(hub.tokens["bob"])
    for viewer in (VIEWER_HTML, OWNER_UNICODE):
        response = bob_token.post(
            f"{hub.url}{SERVICE}/api/grants/bob",
            json={"viewer": viewer, "permissions": ["READ"]},
            timeout=60,
        )
        assert response.status_code == 201, response.text

    pages = {
        "list as bob": service_get(hub, "bob", ""),
        "list as the HTML viewer": service_get(hub, VIEWER_HTML, ""),
        "list filtered by a hostile text": service_get(hub, "bob", "", params={"q": VIEWER_HTML}),
        "grants of bob": service_get(hub, "bob", "grants"),
        "explain": service_get(hub, "alice", "explain", params={"owner": OWNER_HTML, "user": VIEWER_HTML}),
        "explain for a hub group member": service_get(hub, "alice", "explain", params={"owner": OWNER_UNICODE, "user": "dave"}),
        "explain for a policy group member": service_get(hub, "alice", "explain", params={"owner": OWNER_HTML, "user": "carol"}),
    }
    shown = {
        "list as bob": (OWNER_HTML, OWNER_UNICODE),
        "list as the HTML viewer": (OWNER_HTML, OWNER_UNICODE, VIEWER_HTML),
        "list filtered by a hostile text": (VIEWER_HTML,),
        "grants of bob": (VIEWER_HTML, OWNER_UNICODE),
        "explain": (OWNER_HTML, VIEWER_HTML),
        "explain for a hub group member": (OWNER_UNICODE, HUB_GROUP),
        "explain for a policy group member": (OWNER_HTML, POLICY_GROUP),
    }
    for name, page in pages.items():
        print(name, page.status_code)
        assert_escaped(page, *shown[name])

    rejected = bob_token.post(
        f"{hub.url}{SERVICE}/grants", data={"action": "grant", "viewer": VIEWER_HTML + "x", "permissions": "READ"}, timeout=60
    )
    assert rejected.status_code == 400
    assert VIEWER_HTML not in rejected.text
    assert "svg" not in PageContent(rejected.text).tags

    for owner in (OWNER_HTML, OWNER_UNICODE):
        response = service_get(hub, "bob", f"open/{quote(owner, safe='')}")
        assert response.status_code == 302, response.text
        assert response.headers["Location"] == f"/user/{quote(owner, safe='@~')}/cylc/"

    viewable = service_get(hub, VIEWER_HTML, "api/viewable")
    assert viewable.headers["Content-Type"] == "application/json"
    missing = service_get(hub, "bob", f"api/grants/bob/{quote(VIEWER_HTML + 'x', safe='')}")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    assert missing.json()["message"].endswith(repr(VIEWER_HTML + "x"))
    body = viewable.json()
    assert body["user"] == VIEWER_HTML
    assert [server["owner"] for server in body["servers"]] == sorted([OWNER_HTML, OWNER_UNICODE, "bob"])
    for server in body["servers"]:
        assert server["url"] == f"/user/{quote(server['owner'], safe='@~')}/cylc/"
    grants = service_get(hub, "bob", "api/grants/bob").json()["grants"]
    assert sorted(grant["viewer"] for grant in grants) == sorted([VIEWER_HTML, OWNER_UNICODE])
    explained = service_get(hub, "alice", "api/explain", params={"owner": OWNER_UNICODE, "user": "dave"}).json()
    assert explained["user_groups"] == [HUB_GROUP]
    assert explained["permissions"] == ["read"]
    reliability.record(
        "hostile input",
        "Created hub users, a hub group and a policy group whose names hold HTML, quotes "
        "and Unicode, and opened the list, grants, explain and open pages and the JSON API.",
        "Every page showed each name as text with no injected element, open/ redirected to "
        "the URL-escaped UI path, and the JSON returned each name unchanged.",
        hostile_names=len(HOSTILE_NAMES),
        pages=len(pages) + 3,
    )


# Each case is (method, path template, query or body), and {owner} is replaced by the name probed.
OWNER_ENDPOINTS = [
    ("GET", "api/permissions/{owner}", {"params": {"user": "dave"}}),
    ("GET", "open/{owner}", {}),
    ("GET", "api/grants/{owner}", {}),
    ("GET", "api/grants/{owner}/dave", {}),
    ("POST", "api/grants/{owner}", {"json": {"viewer": "dave", "permissions": ["READ"]}}),
    ("DELETE", "api/grants/{owner}/dave", {}),
    ("GET", "api/authorization/{owner}", {}),
    ("GET", "grants", {"params": {"owner": "{owner}"}}),
    ("POST", "grants", {"data": {"owner": "{owner}", "action": "grant", "viewer": "dave", "permissions": "READ"}}),
    ("GET", "explain", {"params": {"owner": "{owner}", "user": "dave"}}),
    ("GET", "api/explain", {"params": {"owner": "{owner}", "user": "dave"}}),
    ("GET", "api/viewable", {"params": {"q": "{owner}"}}),
]

# Headers that differ between any two responses, whatever they are about.
VOLATILE_HEADERS = {"date"}


def fill(value, owner):
    if isinstance(value, str):
        return value.replace("{owner}", owner)
    if isinstance(value, dict):
        return {key: fill(item, owner) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, owner) for item in value]
    return value


def probe(hub, method, template, arguments, owner):
    response = token_client(hub.tokens["erin"]).request(
        method,
        f"{hub.url}{SERVICE}/{template.format(owner=quote(owner, safe=''))}",
        timeout=60,
        allow_redirects=False,
        **fill(arguments, owner),
    )
    headers = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in VOLATILE_HEADERS
    }
    return response.status_code, response.content, headers


def test_forbidden_owner_like_unknown(hostile_hub, reliability):
    hub = hostile_hub
    forbidden = ["bob", OWNER_HTML]
    unknown = ["nobody-here", "<img src=y onerror=alert(\"o'w\")>"]

    compared = 0
    for method, template, arguments in OWNER_ENDPOINTS:
        for existing, missing in zip(forbidden, unknown):
            seen = probe(hub, method, template, arguments, existing)
            absent = probe(hub, method, template, arguments, missing)
            assert seen[0] >= 400 or template == "api/viewable", (method, template, seen)
            assert seen == absent, (method, template, existing, missing)
            compared += 1
    reliability.record(
        "hostile input",
        "As erin, who may view nobody's server, asked every endpoint that takes an owner "
        "about existing owners and about unknown names of the same form.",
        "Each pair of responses had the same status, body and headers (all but Date), so "
        "no endpoint reveals whether a forbidden owner exists.",
        endpoint_cases=len(OWNER_ENDPOINTS),
        compared_pairs=compared,
    )
