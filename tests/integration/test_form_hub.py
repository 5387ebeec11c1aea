"""The options form and REST user_options through the real hub."""

import html
import re

import pytest

pytestmark = pytest.mark.hub

DEFAULT_OPTIONS = {"workflow": "", "log_level": "INFO"}


def test_rest_spawn_without_options_uses_defaults(hub, alice_workflow):
    carol = hub.login("carol")

    response = hub.api(carol, "POST", "/users/carol/server")

    assert response.status_code in (201, 202), response.text
    try:
        model = hub.wait_ready(carol, "carol")
        assert model["user_options"] == DEFAULT_OPTIONS
    finally:
        hub.stop_server(carol, "carol")


def test_rest_spawn_bad_choice_is_400(hub):
    dave = hub.login("dave")

    response = hub.api(
        dave, "POST", "/users/dave/server", json={"user_options": {"log_level": "LOUD"}}
    )

    assert response.status_code == 400
    message = response.json()["message"]
    assert "UI server log level" in message
    assert "LOUD" in message
    assert hub.server_model(dave, "dave") is None


def test_rest_spawn_unknown_option_is_400(hub):
    dave = hub.login("dave")

    response = hub.api(
        dave, "POST", "/users/dave/server", json={"user_options": {"__jupyterhub_x": "1"}}
    )

    assert response.status_code == 400
    assert "__jupyterhub_x" in response.json()["message"]


def test_rest_spawn_injection_in_text_is_400(hub):
    dave = hub.login("dave")

    response = hub.api(
        dave, "POST", "/users/dave/server", json={"user_options": {"workflow": "demo; rm -rf ~"}}
    )

    assert response.status_code == 400
    assert "Workflow to open first" in response.json()["message"]


def test_form_error_rerenders_with_values(hub):
    dave = hub.login("dave")
    spawn_url = f"{hub.url}/hub/spawn/dave"
    dave.get(spawn_url, timeout=30)

    # JupyterHub 6.1's spawn page sends the XSRF token in the form's action URL.
    response = dave.post(
        spawn_url,
        params={"_xsrf": dave.cookies.get("_xsrf", path="/hub/")},
        data={"workflow": "<b>bad name</b>", "log_level": "DEBUG"},
        timeout=60,
    )

    assert response.status_code == 400
    page = response.text
    assert "not an option" not in page
    feedback = re.search(r'<div id="[^"]*" class="invalid-feedback">([^<]*)</div>', page)
    assert feedback, page
    assert "pattern" in feedback.group(1) or "match" in feedback.group(1)
    assert re.search(r'class="form-control is-invalid"\s+id="[^"]*workflow', page)
    # The user's value comes back escaped, never as markup.
    assert html.escape("<b>bad name</b>", quote=True) in page
    assert "<b>bad name</b>" not in page
    selected = re.search(r'<option value="(\w+)" selected>', page)
    assert selected and selected.group(1) == "DEBUG"
    assert hub.server_model(dave, "dave") is None


def test_form_shows_defaults(hub):
    dave = hub.login("dave")

    page = dave.get(f"{hub.url}/hub/spawn/dave", timeout=30).text

    assert 'name="workflow"' in page
    assert 'name="log_level"' in page


def test_form_remembers_last_values(hub, alice_workflow):
    dave = hub.login("dave")
    options = {"workflow": "demo/run1", "log_level": "DEBUG"}

    response = hub.api(dave, "POST", "/users/dave/server", json={"user_options": options})
    assert response.status_code in (201, 202), response.text
    try:
        assert hub.wait_ready(dave, "dave")["user_options"] == options
    finally:
        hub.stop_server(dave, "dave")

    page = dave.get(f"{hub.url}/hub/spawn/dave", timeout=30).text
    assert 'value="demo/run1"' in page
    assert re.search(r'<option value="DEBUG" selected>', page)
