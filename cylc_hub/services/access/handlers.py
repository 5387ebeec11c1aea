"""Pages and JSON API of the cylc-access service."""

import json
import math

from jupyterhub.services.auth import HubOAuthenticated
from jupyterhub.utils import url_escape_path, url_path_join
from tornado import web
from tornado.escape import url_escape

from cylc_hub.policy import ALL_PERMISSIONS, PERMISSION_GROUPS
from cylc_hub.services.access.hub_client import HubAPIError
from cylc_hub.services.access.logs import QueryFreeErrors

#: The maximum length of the list's filter text; longer text is cut.
MAX_QUERY_LENGTH = 100


def access_summary(permissions):
    """Return ``"all"``, ``"control"`` or ``"read"`` for a set of Cylc permissions."""
    if permissions >= ALL_PERMISSIONS:
        return "all"
    if permissions >= PERMISSION_GROUPS["CONTROL"]:
        return "control"
    return "read"


def server_status(owner):
    """Return ``"running"``, ``"pending"`` or ``"stopped"`` for an owner's default server."""
    if owner.ready:
        return "running"
    if owner.pending:
        return "pending"
    return "stopped"


def page_bounds(total, page, page_size):
    """Return ``(page, pages, start)`` with ``page`` clamped to the pages that exist."""
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    return page, pages, (page - 1) * page_size


class BaseHandler(QueryFreeErrors, HubOAuthenticated, web.RequestHandler):
    """Common plumbing: the hub login, the reconciler and the templates."""

    def set_default_headers(self):
        # JSON error bodies echo request values, so a browser must never sniff them as HTML.
        self.set_header("X-Content-Type-Options", "nosniff")

    @property
    def reconciler(self):
        return self.settings["reconciler"]

    @property
    def hub_prefix(self):
        return self.settings["hub_prefix"]

    def owner_url(self, owner):
        """Return the hub URL of ``owner``'s Cylc UI, with the name escaped as the hub does."""
        return url_path_join(
            self.settings["users_prefix"], url_escape_path(owner), self.settings["ui_path"]
        )

    def open_url(self, owner):
        """Return the service URL that makes sure of the share, then redirects to ``owner``'s UI."""
        return url_path_join(self.settings["service_prefix"], "open", url_escape(owner, plus=False))

    async def viewable_servers(self, viewer, query=""):
        """Return the list entries of the servers ``viewer`` may view, sorted by owner.

        ``query`` keeps only owners whose name contains it, ignoring case.
        """
        try:
            await self.reconciler.refresh_users()
        except HubAPIError as error:
            raise web.HTTPError(503, "The hub did not list its users; try again shortly") from error
        await self.reconciler.ensure_viewer(viewer)

        needle = query.strip().lower()
        servers = []
        for name, permissions in sorted(self.reconciler.viewable(viewer).items()):
            if needle and needle not in name.lower():
                continue
            owner = self.reconciler.owners[name]
            servers.append(
                {
                    "owner": name,
                    "server": "",
                    "permissions": sorted(permissions),
                    "access": access_summary(permissions),
                    "ready": owner.ready,
                    "status": server_status(owner),
                    "url": self.owner_url(name),
                    "open_url": self.open_url(name),
                    "last_activity": owner.last_activity,
                }
            )
        return servers

    def write_error(self, status_code, **kwargs):
        self.set_header("Content-Type", "application/json")
        message = self._reason
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message
        self.finish(json.dumps({"status": status_code, "message": message}))


class APIHandler(BaseHandler):
    """JSON API: an unauthenticated request gets 403, never a login redirect."""

    def prepare(self):
        if self.current_user is None:
            raise web.HTTPError(403, "Authentication with the hub is required")

    def check_xsrf_cookie(self):
        # Only token or hub-cookie authenticated GET requests reach this API.
        pass


def int_argument(handler, name, default, minimum, maximum):
    """Return the integer query argument ``name`` within bounds, or raise 400 naming it."""
    text = handler.get_query_argument(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPError(400, f"Invalid {name} {text[:20]!r}: use a whole number") from None
    if not minimum <= value <= maximum:
        raise web.HTTPError(400, f"Invalid {name} {value}: use {minimum} to {maximum}")
    return value


class ListPageHandler(BaseHandler):
    """The HTML list of the servers the logged-in user may view, with a filter and pages.

    ``?embed=1`` leaves out the navigation bar, for the hub's home page.
    """

    @web.authenticated
    async def get(self):
        viewer = self.current_user["name"]
        query = self.get_query_argument("q", "")[:MAX_QUERY_LENGTH]
        page_size = self.settings["list_page_size"]
        requested_page = int_argument(self, "page", 1, 1, 10**6)
        embed = self.get_query_argument("embed", "") == "1"

        servers = await self.viewable_servers(viewer, query)
        page, pages, start = page_bounds(len(servers), requested_page, page_size)
        template = self.settings["jinja_env"].get_template("access/list.html")
        self.finish(
            template.render(
                viewer=viewer,
                servers=servers[start : start + page_size],
                total=len(servers),
                query=query,
                page=page,
                pages=pages,
                embed=embed,
                hub_prefix=self.hub_prefix,
                service_prefix=self.settings["service_prefix"],
            )
        )


class OpenHandler(BaseHandler):
    """``GET open/OWNER``: make sure the viewer's access exists, then go to the owner's UI.

    An owner the viewer may not read gets the same 404 as an unknown name,
    so the response reveals nothing.
    """

    @web.authenticated
    async def get(self, owner):
        viewer = self.current_user["name"]
        try:
            await self.reconciler.refresh_users()
        except HubAPIError as error:
            raise web.HTTPError(503, "The hub did not list its users; try again shortly") from error

        if owner != viewer:
            if owner not in self.reconciler.viewable(viewer):
                raise web.HTTPError(404, "No Cylc UI server of that name that you may view")
            if self.reconciler.owners[owner].has_server and not self.reconciler.covers(owner, viewer):
                await self.reconciler.reconcile_now(owner)
        self.redirect(self.owner_url(owner))


class ViewableAPIHandler(APIHandler):
    """``GET api/viewable``: the list page's data as JSON.

    Optional ``q`` filters owner names, and ``offset`` and ``limit`` select a
    page; ``total`` is the number of matching servers.
    """

    async def get(self):
        viewer = self.current_user["name"]
        query = self.get_query_argument("q", "")[:MAX_QUERY_LENGTH]
        offset = int_argument(self, "offset", 0, 0, 10**9)
        limit = int_argument(self, "limit", 0, 0, 10**6)

        servers = await self.viewable_servers(viewer, query)
        selected = servers[offset : offset + limit] if limit else servers[offset:]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"user": viewer, "total": len(servers), "servers": selected}))


class PermissionsAPIHandler(APIHandler):
    """``GET api/permissions/OWNER?user=VIEWER`` for the owner, the owner's servers and admins."""

    def get(self, owner):
        requester = self.current_user
        viewer = self.get_query_argument("user", None)
        if not viewer:
            raise web.HTTPError(400, "Missing query argument 'user': the viewer to decide for")

        is_owner = requester.get("kind") == "user" and requester["name"] == owner
        if not (is_owner or requester.get("admin")):
            raise web.HTTPError(403, "Only the owner, the owner's servers and admins may ask")

        decision = self.reconciler.decide(owner, viewer)
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {"owner": owner, "user": viewer, "permissions": sorted(decision.permissions)}
            )
        )


class AuthorizationAPIHandler(APIHandler):
    """``GET api/authorization/OWNER``: Cylc's ``site_authorization`` for OWNER's server.

    The dict has one entry per viewer with any permission, rules and the
    owner's grants combined, in the shape cylc-uiserver 1.7 reads, for a
    spawner to write when the server starts. Only the owner (or the owner's
    server, whose token is the owner's) and admins may ask.
    """

    async def get(self, owner):
        requester = self.current_user
        is_owner = requester.get("kind") == "user" and requester["name"] == owner
        if not (is_owner or requester.get("admin")):
            raise web.HTTPError(403, "Only the owner, the owner's servers and admins may ask")
        try:
            await self.reconciler.refresh_users()
        except HubAPIError as error:
            raise web.HTTPError(503, "The hub did not list its users; try again shortly") from error

        # NOTE: one decision per hub user, about 0.25 ms each with 1,000 rules
        # (bench/bench_access.py), so about 2.5 s at 10,000 users.
        entries = {}
        for viewer in sorted(self.reconciler.owners):
            if viewer == owner:
                continue
            permissions = sorted(self.reconciler.decide(owner, viewer).permissions)
            if permissions:
                entries[viewer] = {"default": permissions, "limit": permissions}
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps({"owner": owner, "site_authorization": {owner: entries} if entries else {}})
        )
