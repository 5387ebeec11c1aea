"""A person's whole path in headless Chromium: log in, start, open a colleague's Cylc UI."""

import pytest
from playwright.sync_api import expect

from browserharness import log_in, screenshot

pytestmark = [pytest.mark.hub, pytest.mark.browser]


def test_reader_opens_colleague_ui(hub, alice_server, alice_workflow, page):
    log_in(page, hub, "bob")

    # bob has no server yet, so the hub shows the options form.
    page.wait_for_url("**/hub/spawn**")
    expect(page.locator("#spawn_form select[name=log_level]")).to_be_visible()
    screenshot(page, "options-form")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url("**/user/bob/**", timeout=120_000)

    page.goto(f"{hub.url}/services/cylc-access/")
    owner_link = page.locator("#viewable-servers a.owner-link", has_text="alice")
    expect(owner_link).to_be_visible()
    screenshot(page, "access-list-bob")
    owner_link.click()

    # The first visit to another user's server asks bob to authorize it once.
    page.wait_for_load_state()
    if "/hub/api/oauth2/authorize" in page.url:
        screenshot(page, "authorize-alice-as-bob")
        page.get_by_role("button", name="Authorize").click()
    page.wait_for_url("**/user/alice/cylc/**")
    expect(page.get_by_text(alice_workflow, exact=True).first).to_be_visible(timeout=60_000)
    screenshot(page, "alice-ui-as-bob")


def test_list_empty_for_dave(hub, alice_server, page):
    log_in(page, hub, "dave")
    page.wait_for_url("**/hub/**")

    page.goto(f"{hub.url}/services/cylc-access/")

    expect(page.locator("#no-servers")).to_be_visible()
    expect(page.locator("#viewable-servers")).to_have_count(0)
    screenshot(page, "access-list-dave")
