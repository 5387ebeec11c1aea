"""A person's whole path in headless Chromium: log in, start, open a colleague's Cylc UI."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.hub, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("CYLC_HUB_SCREENSHOTS", "/tmp/cylc-hub-screenshots"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


def log_in(page, hub, user):
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


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
