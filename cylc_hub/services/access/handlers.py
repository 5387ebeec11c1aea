"""Pages and JSON API of the cylc-access service."""

import json

from jupyterhub.services.auth import HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web

from cylc_hub.services.access.hub_client import HubAPIError


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Common plumbing: the hub login, the reconciler and the templates."""

    @property
    def reconciler(self):
        return self.settings["reconciler"]

    @property
    def hub_prefix(self):
        return self.settings["hub_prefix"]

    def owner_url(self, owner):
        """Return the hub URL of ``owner``'s Cylc UI."""
        return url_path_join(self.settings["users_prefix"], owner, self.settings["ui_path"])

    async def viewable_servers(self, viewer):
        """Return the list entries of the servers ``viewer`` may view, sorted by owner."""
        try:
            await self.reconciler.refresh_users()
        except HubAPIError as error:
            raise web.HTTPError(503, "The hub did not list its users; try again shortly") from error
        await self.reconciler.ensure_viewer(viewer)

        servers = []
        for name, permissions in sorted(self.reconciler.viewable(viewer).items()):
            owner = self.reconciler.owners[name]
            servers.append(
                {
                    "owner": name,
                    "server": "",
                    "permissions": sorted(permissions),
                    "ready": owner.ready,
                    "url": self.owner_url(name),
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


class ListPageHandler(BaseHandler):
    """The HTML list of the servers the logged-in user may view."""

    @web.authenticated
    async def get(self):
        viewer = self.current_user["name"]
        servers = await self.viewable_servers(viewer)
        template = self.settings["jinja_env"].get_template("access/list.html")
        self.finish(
            template.render(
                viewer=viewer,
                servers=servers,
                hub_prefix=self.hub_prefix,
                service_prefix=self.settings["service_prefix"],
            )
        )


class ViewableAPIHandler(APIHandler):
    """``GET api/viewable``: the list page's data as JSON."""

    async def get(self):
        viewer = self.current_user["name"]
        servers = await self.viewable_servers(viewer)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"user": viewer, "servers": servers}))


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
