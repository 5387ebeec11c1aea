"""Walltime, memory and dependent choices in the real hub's form: group limits, REST and the browser."""

import pytest
from playwright.sync_api import expect

from browserharness import log_in, screenshot
from hubharness import ROOT, start_hub, stop_hub

pytestmark = [pytest.mark.hub, pytest.mark.browser]

CONFIG = ROOT / "tests" / "configs" / "form_config.py"


@pytest.fixture(scope="module")
def form_hub(password):
    """A hub whose cylc-local form has walltime (24 h for ops, else 4 h) and memory."""
    running = start_hub(password, config=CONFIG)
    yield running
    stop_hub(running)


@pytest.fixture
def page_without_javascript(browser):
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


def stop_if_running(hub, user):
    session = hub.login(user)
    if hub.server_model(session, user) is not None:
        hub.stop_server(session, user)


def test_rest_walltime_limit_by_group(form_hub):
    carol = form_hub.login("carol")
    bob = form_hub.login("bob")

    rejected = form_hub.api(bob, "POST", "/users/bob/server", json={"user_options": {"walltime": "24h"}})

    assert rejected.status_code == 400
    assert rejected.json()["message"] == "Walltime: must be between 10m and 4h"
    assert form_hub.server_model(bob, "bob") is None

    accepted = form_hub.api(
        carol, "POST", "/users/carol/server", json={"user_options": {"walltime": "24h", "memory": "4G"}}
    )
    assert accepted.status_code in (201, 202), accepted.text
    try:
        options = form_hub.wait_ready(carol, "carol")["user_options"]
        assert options["walltime"] == 24 * 3600
        assert options["memory"] == 4096
    finally:
        form_hub.stop_server(carol, "carol")


def test_rest_bad_memory_names_field(form_hub):
    dave = form_hub.login("dave")

    response = form_hub.api(dave, "POST", "/users/dave/server", json={"user_options": {"memory": "lots"}})

    assert response.status_code == 400
    assert response.json()["message"].startswith("Memory: must be a memory size such as 512M")
    assert form_hub.server_model(dave, "dave") is None


def test_query_bad_walltime_rerenders(form_hub):
    dave = form_hub.login("dave")

    response = dave.get(f"{form_hub.url}/hub/spawn/dave?opt-walltime=5h&opt-memory=1G", timeout=60)

    assert response.status_code == 400
    assert "must be between 10m and 4h" in response.text
    assert 'value="5h"' in response.text
    assert 'value="1G"' in response.text
    assert form_hub.server_model(dave, "dave") is None


def test_browser_walltime_error_then_spawn(form_hub, page):
    stop_if_running(form_hub, "bob")
    log_in(page, form_hub, "bob")
    page.wait_for_url("**/hub/spawn**")

    page.fill("#cylc-hub-option-walltime", "6h")
    page.fill("#cylc-hub-option-memory", "1G")
    page.select_option("#cylc-hub-option-log_level", "DEBUG")
    page.click("#spawn_form button[type=submit]")

    # The hub returns 400 with the form again, showing the message under walltime and the typed values.
    error = page.locator("#cylc-hub-option-walltime-error")
    expect(error).to_have_text("must be between 10m and 4h")
    expect(page.locator("#cylc-hub-option-walltime")).to_have_value("6h")
    expect(page.locator("#cylc-hub-option-walltime")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#cylc-hub-option-memory")).to_have_value("1G")
    expect(page.locator("#cylc-hub-option-log_level")).to_have_value("DEBUG")
    shot = screenshot(page, "form-walltime-error")
    assert shot.stat().st_size > 0

    page.fill("#cylc-hub-option-walltime", "3h")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url("**/user/bob/**", timeout=120_000)

    session = form_hub.login("bob")
    options = form_hub.server_model(session, "bob")["user_options"]
    assert options["walltime"] == 3 * 3600
    assert options["memory"] == 1024
    assert options["log_level"] == "DEBUG"
    form_hub.stop_server(session, "bob")

    # The next visit shows the last accepted values.
    page.goto(f"{form_hub.url}/hub/spawn/bob")
    expect(page.locator("#cylc-hub-option-walltime")).to_have_value("3h")
    expect(page.locator("#cylc-hub-option-memory")).to_have_value("1G")
    expect(page.locator("#cylc-hub-option-log_level")).to_have_value("DEBUG")
    screenshot(page, "form-walltime-prefilled")


def test_browser_ops_member_gets_longer_limit(form_hub, page):
    stop_if_running(form_hub, "carol")
    log_in(page, form_hub, "carol")
    page.wait_for_url("**/hub/spawn**")

    page.fill("#cylc-hub-option-walltime", "30h")
    page.click("#spawn_form button[type=submit]")
    expect(page.locator("#cylc-hub-option-walltime-error")).to_have_text("must be between 10m and 24h")
    screenshot(page, "form-walltime-error-ops")

    page.fill("#cylc-hub-option-walltime", "20h")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url("**/user/carol/**", timeout=120_000)

    session = form_hub.login("carol")
    assert form_hub.server_model(session, "carol")["user_options"]["walltime"] == 20 * 3600
    form_hub.stop_server(session, "carol")


def test_browser_partitions_follow_cluster(form_hub, page):
    log_in(page, form_hub, "dave")
    page.wait_for_url("**/hub/spawn**")
    alpha = page.locator('#cylc-hub-option-partition optgroup[data-cylc-hub-parent-value="alpha"]')
    beta = page.locator('#cylc-hub-option-partition optgroup[data-cylc-hub-parent-value="beta"]')
    expect(page.locator("#cylc-hub-option-partition")).to_have_value("short")
    expect(beta).to_have_attribute("hidden", "")

    page.select_option("#cylc-hub-option-cluster", "beta")

    expect(page.locator("#cylc-hub-option-partition")).to_have_value("gpu")
    expect(alpha).to_have_attribute("hidden", "")
    expect(beta).not_to_have_attribute("hidden", "")
    screenshot(page, "form-partitions-beta")


def test_browser_without_javascript_rejects_wrong_partition(form_hub, page_without_javascript):
    page = page_without_javascript
    log_in(page, form_hub, "dave")
    page.wait_for_url("**/hub/spawn**")

    # Without the script every cluster's partitions are offered, grouped by cluster.
    page.select_option("#cylc-hub-option-cluster", "beta")
    page.select_option("#cylc-hub-option-partition", "long")
    page.click("#spawn_form button[type=submit]")

    expect(page.locator("#cylc-hub-option-partition-error")).to_have_text("'long' is not one of the choices: gpu")
    expect(page.locator("#cylc-hub-option-cluster")).to_have_value("beta")
    session = form_hub.login("dave")
    assert form_hub.server_model(session, "dave") is None
