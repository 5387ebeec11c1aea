"""A small client for the JupyterHub REST API calls that cylc-access makes."""

import json
import logging
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"
PAGE_LIMIT = 200


class HubAPIError(Exception):
    """A JupyterHub API request failed; ``status`` is the HTTP status, 0 for no response."""

    def __init__(self, method, path, status, message):
        super().__init__(f"{method} {path} failed with status {status}: {message}")
        self.status = status


class HubClient:
    """Send authenticated requests to the JupyterHub REST API.

    ``api_url`` is the hub API root such as ``http://127.0.0.1:8081/hub/api``;
    ``token`` is the service's API token, sent in a header and never logged.
    ``http_client`` may be replaced by a test with any object that has an
    async ``fetch(request)`` returning a tornado ``HTTPResponse``.
    """

    def __init__(self, api_url, token, *, http_client=None, log=None):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.http_client = http_client or AsyncHTTPClient()
        self.log = log or logging.getLogger(__name__)

    async def request(self, method, path, body=None, *, paginated=False):
        """Send one request and return the decoded JSON body, or None for an empty body."""
        headers = {"Authorization": f"token {self._token}"}
        if paginated:
            headers["Accept"] = PAGINATION_MEDIA_TYPE
        request = HTTPRequest(
            self.api_url + path,
            method=method,
            headers=headers,
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=30,
        )

        try:
            response = await self.http_client.fetch(request)
        except HTTPClientError as error:
            message = _error_message(error.response)
            self.log.warning("Hub API %s %s: %s %s", method, path, error.code, message)
            raise HubAPIError(method, path, error.code, message) from None
        except OSError as error:
            self.log.warning("Hub API %s %s: no response: %s", method, path, error)
            raise HubAPIError(method, path, 0, str(error)) from None

        self.log.debug("Hub API %s %s: %s", method, path, response.code)
        if not response.body:
            return None
        return json.loads(response.body)

    async def list_paginated(self, path, params=None):
        """Return every item of a paginated listing, following ``next`` links."""
        items = []
        offset = 0
        while True:
            query = dict(params or {}, offset=offset, limit=PAGE_LIMIT)
            page = await self.request("GET", f"{path}?{urlencode(query)}", paginated=True)
            items.extend(page["items"])
            following = page.get("_pagination", {}).get("next")
            if not following:
                return items
            offset = following["offset"]

    async def list_users(self):
        """Return the model of every hub user, including stopped servers."""
        return await self.list_paginated("/users", {"include_stopped_servers": "1"})

    async def list_shares(self, owner):
        """Return the shares of every server of ``owner``."""
        return await self.list_paginated(f"/shares/{quote(owner, safe='')}")

    async def grant_share(self, owner, viewer, server_name=""):
        """Share ``owner``'s server with the user ``viewer`` (hub default scopes: access)."""
        path = f"/shares/{quote(owner, safe='')}/{quote(server_name, safe='')}"
        return await self.request("POST", path, {"user": viewer})

    async def revoke_share(self, owner, viewer, server_name=""):
        """Revoke every scope that ``owner``'s server shares with the user ``viewer``."""
        path = f"/shares/{quote(owner, safe='')}/{quote(server_name, safe='')}"
        return await self.request("PATCH", path, {"user": viewer})

    async def revoke_group_share(self, owner, group, server_name=""):
        """Revoke every scope that ``owner``'s server shares with the hub group ``group``."""
        path = f"/shares/{quote(owner, safe='')}/{quote(server_name, safe='')}"
        return await self.request("PATCH", path, {"group": group})

    async def list_groups(self):
        """Return the model of every hub group, with its members in ``users``."""
        return await self.list_paginated("/groups")

    async def add_group_members(self, name, users):
        """Add ``users`` to the hub group ``name``."""
        path = f"/groups/{quote(name, safe='')}/users"
        return await self.request("POST", path, {"users": sorted(users)})

    async def remove_group_members(self, name, users):
        """Remove ``users`` from the hub group ``name``."""
        path = f"/groups/{quote(name, safe='')}/users"
        return await self.request("DELETE", path, {"users": sorted(users)})


def _error_message(response):
    """Return the hub's error message from a failed response, or a placeholder."""
    if response is None or not response.body:
        return "no response body"
    try:
        return json.loads(response.body).get("message", "")
    except (ValueError, AttributeError):
        return response.body[:200].decode("utf8", "replace")
