"""The list of viewable servers in headless Chromium: filter, pages, Open link, home page.

The tests start their own hub with a small page size and a test service
that creates 30 extra hub users, one of them named with HTML.
"""

import secrets
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import expect

from hubharness import ROOT, start_hub, stop_hub, wait_for

pytestmark = [pytest.mark.hub, pytest.mark.browser]

SERVICE = "/services/cylc-access"
PAGE_SIZE = 10
HTML_NAME = "<img src=x onerror=window.cylcHacked=1>"
EXTRA_USERS = [f"user{number:02d}" for number in range(29)] + [HTML_NAME]

POLICY = """
[[rules]]
owners = ["*"]
viewers = ["carol"]
default = ["READ"]

[[rules]]
owners = ["bob"]
viewers = ["carol"]
default = ["READ", "CONTROL"]
"""

TEST_CONFIG = """
import os
from jupyterhub.auth import PAMAuthenticator
load_subconfig(os.environ["CYLC_HUB_BASE_CONFIG"])


class ListTestAuthenticator(PAMAuthenticator):
    # The extra users exist only in the hub: they never log in.
    def system_user_exists(self, user):
        return True


c.JupyterHub.authenticator_class = ListTestAuthenticator
c.JupyterHub.services.append(
    {"name": "test-admin", "api_token": os.environ["CYLC_HUB_TEST_ADMIN_TOKEN"]}
)
c.JupyterHub.load_roles.append(
    {"name": "test-admin", "services": ["test-admin"], "scopes": ["admin:users"]}
)
"""


@pytest.fixture(scope="module")
def list_hub(password, tmp_path_factory):
    directory = tmp_path_factory.mktemp("list-hub")
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
            "CYLC_HUB_TEST_ADMIN_TOKEN": token,
            "CYLC_HUB_LIST_PAGE_SIZE": str(PAGE_SIZE),
        },
    )
    try:
        headers = {"Authorization": f"token {token}"}
        for name in EXTRA_USERS:
            response = requests.post(
                f"{hub.url}/hub/api/users/{quote(name, safe='')}", headers=headers, timeout=30
            )
            assert response.status_code == 201, (name, response.text)

        bob = hub.login("bob")
        response = hub.api(bob, "POST", "/users/bob/server")
        assert response.status_code in (201, 202), response.text
        hub.wait_ready(bob, "bob")

        # The service reuses its listing of the hub's users for a few seconds.
        carol = hub.login("carol")
        hub.open(carol, f"{SERVICE}/")

        def service_sees_everyone():
            body = carol.get(f"{hub.url}{SERVICE}/api/viewable", timeout=30).json()
            statuses = {server["owner"]: server["status"] for server in body["servers"]}
            return len(statuses) > len(EXTRA_USERS) and statuses.get("bob") == "running"

        wait_for(service_sees_everyone, 30, interval=1, message="the service to list every user")
        yield hub
    finally:
        stop_hub(hub)


@pytest.fixture
def carol_page(browser, list_hub):
    context = browser.new_context()
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{list_hub.url}/hub/login")
    page.fill("#username_input", "carol")
    page.fill("#password_input", list_hub.password)
    page.click("#login_submit")
    page.wait_for_url("**/hub/**")
    yield page
    context.close()


def owners_on(page_or_frame):
    return page_or_frame.locator("#viewable-servers tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.owner)"
    )


def test_list_pages_through_owners(carol_page, list_hub):
    page = carol_page
    page.goto(f"{list_hub.url}{SERVICE}/")

    first = owners_on(page)
    total = int(page.locator("#page-position").inner_text().split("(")[1].split()[0])
    assert len(first) == PAGE_SIZE
    assert total >= len(EXTRA_USERS) + 1
    assert "carol" not in first

    seen = list(first)
    while page.locator("#next-page").count():
        page.click("#next-page")
        seen += owners_on(page)

    assert len(seen) == total
    assert seen == sorted(seen)
    assert "bob" in seen
    assert HTML_NAME in seen


def test_list_filter_by_owner(carol_page, list_hub):
    page = carol_page
    page.goto(f"{list_hub.url}{SERVICE}/")

    page.fill("#filter", "user1")
    page.click("#filter-form button[type=submit]")

    assert owners_on(page) == [f"user{number}" for number in range(10, 20)]
    expect(page.locator("#pager")).to_have_count(0)
    page.fill("#filter", "nobody-matches")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#no-servers")).to_contain_text("nobody-matches")


def test_list_shows_status_and_access(carol_page, list_hub):
    page = carol_page
    page.goto(f"{list_hub.url}{SERVICE}/?q=bob")

    row = page.locator('#viewable-servers tr[data-owner="bob"]')
    expect(row.locator(".status")).to_have_text("running")
    expect(row.locator(".access")).to_have_text("control")

    page.goto(f"{list_hub.url}{SERVICE}/?q=user05")
    row = page.locator('#viewable-servers tr[data-owner="user05"]')
    expect(row.locator(".status")).to_have_text("stopped")
    expect(row.locator(".access")).to_have_text("read")


def test_list_escapes_html_name(carol_page, list_hub):
    page = carol_page
    page.goto(f"{list_hub.url}{SERVICE}/?q={quote('<img')}")

    link = page.locator("#viewable-servers a.owner-link")
    expect(link).to_have_text(HTML_NAME)
    assert page.locator("#viewable-servers img").count() == 0
    assert page.evaluate("window.cylcHacked === undefined")


def test_open_link_goes_through_service(carol_page, list_hub):
    page = carol_page
    page.goto(f"{list_hub.url}{SERVICE}/?q=bob")
    open_link = page.locator('#viewable-servers tr[data-owner="bob"] a.open-link')
    assert open_link.get_attribute("href") == f"{SERVICE}/open/bob"

    open_link.click()

    page.wait_for_load_state()
    if "/hub/api/oauth2/authorize" in page.url:
        page.get_by_role("button", name="Authorize").click()
    page.wait_for_url("**/user/bob/cylc/**")


def test_open_unknown_owner_is_404(carol_page, list_hub):
    response = carol_page.goto(f"{list_hub.url}{SERVICE}/open/carol-not-a-user")

    assert response.status == 404


def test_home_page_shows_list(carol_page, list_hub):
    page = carol_page
    page.goto(f"{list_hub.url}/hub/home")

    frame = page.frame_locator("#cylc-access-list")
    expect(frame.locator('#viewable-servers tr[data-owner="bob"]')).to_be_visible()
    frame.locator("#filter").fill("user2")
    frame.locator("#filter-form button[type=submit]").click()
    expect(frame.locator("#viewable-servers tbody tr")).to_have_count(9)
    expect(frame.locator('a.open-link[target="_top"]').first).to_be_visible()
