"""The UI server authorization: rendering, and asking cylc-access for it."""

import json
import logging
import os
from types import SimpleNamespace

import pytest
from tornado.httpclient import HTTPClientError

from cylc_hub.spawners.ui_authorization import (
    UIAuthorizationError,
    check_searchable,
    fetch_site_authorization,
    render_config,
)

LOG = logging.getLogger("test")
GOOD = {"alice": {"bob": {"default": ["read"], "limit": ["read"]}}}


class FakeClient:
    """Returns one canned body, or raises the given error, and records the request."""

    def __init__(self, body=None, error=None):
        self.body = body
        self.error = error
        self.requests = []

    async def fetch(self, request):
        self.requests.append(request)
        if self.error:
            raise self.error
        return SimpleNamespace(body=json.dumps(self.body).encode())


async def fetch(client):
    return await fetch_site_authorization(
        "http://127.0.0.1:1/services/cylc-access/", "alice", "secret-token", log=LOG, http_client=client
    )


async def test_fetch_returns_authorization():
    client = FakeClient({"owner": "alice", "site_authorization": GOOD})

    assert await fetch(client) == GOOD
    request = client.requests[0]
    assert request.url == "http://127.0.0.1:1/services/cylc-access/api/authorization/alice"
    assert request.headers["Authorization"] == "token secret-token"
    assert "secret-token" not in request.url


@pytest.mark.parametrize(
    "body",
    [
        {"site_authorization": {"bob": {"carol": {"default": ["read"]}}}},
        {"site_authorization": {"alice": {"bob": {"default": ["rm -rf"]}}}},
        {"site_authorization": {"alice": {"bob": {"default": "read"}}}},
        {"site_authorization": {"alice": {"bob": {"everything": ["read"]}}}},
        {"site_authorization": []},
        {"other": 1},
        [],
    ],
)
async def test_fetch_rejects_bad_shapes(body, caplog):
    with caplog.at_level(logging.WARNING):
        assert await fetch(FakeClient(body)) is None

    assert "could not give alice's authorization" in caplog.text


async def test_fetch_http_error_is_none(caplog):
    client = FakeClient(error=HTTPClientError(403))

    with caplog.at_level(logging.WARNING):
        assert await fetch(client) is None

    assert "cylc-access gave 403" in caplog.text
    assert "secret-token" not in caplog.text


async def test_fetch_unreachable_is_none():
    assert await fetch(FakeClient(error=ConnectionRefusedError(111, "refused"))) is None


def test_render_config_is_python_literal():
    text = render_config({"alice": {"x\"); import os; #": {"default": ["read"], "limit": ["read"]}}})
    namespace = {"c": SimpleNamespace(CylcUIServer=SimpleNamespace(), HubOAuth=SimpleNamespace(), IdentityProvider=SimpleNamespace())}

    exec(compile(text, "jupyter_server_config.py", "exec"), namespace)

    config = namespace["c"]
    assert list(config.CylcUIServer.site_authorization["alice"]) == ['x"); import os; #']
    assert config.CylcUIServer.user_authorization == {}
    assert config.HubOAuth.cache_max_age == 30


def test_local_args_do_not_accumulate():
    from cylc_hub.spawners.local import CylcLocalSpawner

    spawner = CylcLocalSpawner(form_values={"log_level": "DEBUG"})

    first = spawner.get_args()
    second = spawner.get_args()

    assert first == second
    assert second.count("--ServerApp.log_level=DEBUG") == 1
    assert spawner.args == []


def test_searchable_root_accepted(searchable_root):
    check_searchable(os.path.join(searchable_root, "nobody"), "nobody")


def test_unsearchable_parent_named(searchable_root):
    inner = os.path.join(searchable_root, "inner")
    os.mkdir(inner, 0o700)

    with pytest.raises(UIAuthorizationError) as caught:
        check_searchable(os.path.join(inner, "nobody"), "nobody")

    message = str(caught.value)
    assert f"{inner} is not searchable" in message
    assert "user nobody" in message
    assert f"chmod o+x {inner}" in message
