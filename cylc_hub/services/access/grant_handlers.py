"""The owner's page and JSON API for granting and revoking access to their UI server.

Cookie-authenticated POST and DELETE requests need the XSRF token
(JupyterHub's ``HubOAuthenticated`` accepts the cookie only with it);
requests with an API token do not.
"""

import json

from tornado import web

from cylc_hub.services.access.grants import GrantError, check_grant
from cylc_hub.services.access.grants_store import GrantStoreError
from cylc_hub.services.access.handlers import BaseHandler
from cylc_hub.services.access.hub_client import HubAPIError

#: The permission groups offered as checkboxes on the owner's page.
PERMISSION_CHOICES = ("READ", "CONTROL", "ALL")

#: Durations offered on the owner's page; any other duration may be typed.
DURATION_CHOICES = (("", "for good"), ("1h", "1 hour"), ("8h", "8 hours"), ("1d", "1 day"), ("7d", "7 days"))

UI_CHANGE_NOTE = (
    "Opening your UI through the hub follows a change at once. Inside the Cylc UI, "
    "a running server keeps the permissions it started with: a change of what a "
    "viewer may do there applies from your next server start."
)


class GrantsMixin:
    """Grant and revoke on behalf of an owner, shared by the page and the API."""

    @property
    def grant_store(self):
        return self.settings["grant_store"]

    def require_xsrf_for_cookie(self):
        """Raise 403 naming the XSRF token when a cookie request came without a valid one."""
        if self.current_user is None:
            self.check_xsrf_cookie()
            raise web.HTTPError(403, "Authentication with the hub is required")

    def owner_for_request(self, owner):
        """Return ``owner`` after checking that the requester is that owner or an admin."""
        requester = self.current_user
        is_owner = requester.get("kind", "user") == "user" and requester["name"] == owner
        if not (is_owner or requester.get("admin")):
            raise web.HTTPError(403, "Only the owner and admins may change an owner's grants")
        return owner

    async def known_users(self, max_age=5):
        try:
            return await self.reconciler.refresh_users(max_age=max_age)
        except HubAPIError as error:
            raise web.HTTPError(503, "The hub did not list its users; try again shortly") from error

    async def grant(self, owner, viewer, permissions, duration):
        """Validate and store a grant, then reconcile the owner's shares; return the record."""
        users = await self.known_users()
        policy = self.settings["policy_store"].policy
        request = check_grant(
            policy,
            owner,
            viewer,
            permissions,
            duration,
            now=self.grant_store.clock(),
        )
        if not request.viewer.startswith("group:") and request.viewer not in users:
            # The listing may predate a user that the hub created a moment ago.
            users = await self.known_users(max_age=0)
        if not request.viewer.startswith("group:") and request.viewer not in users:
            raise GrantError(f"No hub user named {request.viewer[:60]!r}: check the spelling.")

        record = self.grant_store.put(
            owner,
            request.viewer,
            request.permissions,
            created_by=self.current_user["name"],
            expires_at=request.expires_at,
        )
        self.log.info(
            "Grant stored: id=%s owner=%s viewer=%s permissions=%s expires_at=%s by=%s",
            record.id,
            owner,
            record.viewer,
            ",".join(record.permissions),
            record.expires_at.isoformat() if record.expires_at else "never",
            record.created_by,
        )
        await self.reconciler.reconcile_now(owner)
        return record

    async def revoke(self, owner, viewer):
        """Remove a grant and reconcile the owner's shares; return the record or None."""
        record = self.grant_store.remove(owner, viewer)
        if record is None:
            return None
        self.log.info(
            "Grant revoked: id=%s owner=%s viewer=%s permissions=%s by=%s",
            record.id,
            owner,
            viewer,
            ",".join(record.permissions),
            self.current_user["name"],
        )
        await self.reconciler.reconcile_now(owner)
        return record

    @property
    def log(self):
        return self.settings["service_log"]


class GrantsPageHandler(GrantsMixin, BaseHandler):
    """``GET/POST grants``: the owner's page of who may view their UI, and their grants."""

    @web.authenticated
    async def get(self):
        owner = self.owner_for_request(self.get_query_argument("owner", self.current_user["name"]))
        await self.known_users()
        self.render_page(owner)

    async def post(self):
        self.require_xsrf_for_cookie()
        owner = self.owner_for_request(self.get_body_argument("owner", self.current_user["name"]))
        action = self.get_body_argument("action", "")
        viewer = self.get_body_argument("viewer", "")

        try:
            if action == "grant":
                permissions = self.get_body_arguments("permissions")
                permissions += self.get_body_argument("other_permissions", "").replace(",", " ").split()
                record = await self.grant(
                    owner, viewer, permissions, self.get_body_argument("duration", "")
                )
                message = f"Granted {', '.join(record.permissions)} to {record.viewer}."
            elif action == "revoke":
                record = await self.revoke(owner, viewer)
                if record is None:
                    raise GrantError(f"No grant to {viewer[:60]!r} to revoke.")
                message = f"Revoked the grant to {record.viewer}."
            else:
                raise GrantError(f"Unknown action {action[:20]!r}: use 'grant' or 'revoke'.")
        except GrantError as error:
            self.set_status(400)
            self.render_page(owner, error=str(error), form={"viewer": viewer})
            return
        except GrantStoreError as error:
            self.set_status(503)
            self.render_page(owner, error=str(error), form={"viewer": viewer})
            return
        self.render_page(owner, message=message)

    def render_page(self, owner, *, message=None, error=None, form=None):
        policy = self.settings["policy_store"].policy
        viewers = []
        for name in sorted(self.reconciler.owners):
            if name == owner:
                continue
            decision = self.reconciler.decide(owner, name)
            if decision.permissions:
                viewers.append(
                    {
                        "name": name,
                        "permissions": sorted(decision.permissions),
                        "source": "your grant" if decision.basis == "grants" else "site rules",
                        "can_open": "read" in decision.permissions,
                    }
                )
        owner_groups = policy.groups_of(owner)
        rules = [
            rule
            for rule in policy.rules
            if any(selector.matches(owner, owner_groups) for selector in rule.owners)
        ]
        template = self.settings["jinja_env"].get_template("access/grants.html")
        self.finish(
            template.render(
                owner=owner,
                viewer=self.current_user["name"],
                viewers=viewers,
                grants=self.grant_store.grants(owner),
                rules=rules,
                permission_choices=PERMISSION_CHOICES,
                duration_choices=DURATION_CHOICES,
                note=UI_CHANGE_NOTE,
                message=message,
                error=error,
                form=form or {},
                xsrf_token=self.xsrf_token.decode("ascii"),
                hub_prefix=self.hub_prefix,
                service_prefix=self.settings["service_prefix"],
            )
        )


class GrantsAPIHandler(GrantsMixin, BaseHandler):
    """``api/grants/OWNER[/VIEWER]``: list or read one (GET), add or replace (POST), revoke (DELETE).

    A grants database that cannot be written gets 503 with a message, and
    nothing changes.
    """

    def prepare(self):
        if self.request.method in ("GET", "HEAD"):
            if self.current_user is None:
                raise web.HTTPError(403, "Authentication with the hub is required")
        else:
            self.require_xsrf_for_cookie()

    def write_json(self, body, status=200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def get(self, owner, viewer=None):
        owner = self.owner_for_request(owner)
        grants = [record.to_json() for record in self.grant_store.grants(owner)]
        if viewer is None:
            self.write_json({"owner": owner, "grants": grants})
            return

        for grant in grants:
            if grant["viewer"] == viewer:
                self.write_json({"grant": grant})
                return
        raise web.HTTPError(404, f"{owner} has no grant in force to {viewer[:60]!r}")

    async def post(self, owner, viewer=None):
        owner = self.owner_for_request(owner)
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as error:
            raise web.HTTPError(400, f"Invalid JSON body: {error}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The body must be a JSON object with 'viewer' and 'permissions'")
        unknown = sorted(set(body) - {"viewer", "permissions", "duration"})
        if unknown:
            raise web.HTTPError(
                400, f"Unknown fields {unknown}: use 'viewer', 'permissions' and 'duration'"
            )
        duration = body.get("duration")
        if duration is not None and not isinstance(duration, str):
            raise web.HTTPError(400, f"Invalid duration {duration!r}: use a string such as '8h'")

        try:
            record = await self.grant(owner, viewer or body.get("viewer"), body.get("permissions"), duration)
        except GrantError as error:
            raise web.HTTPError(400, str(error)) from None
        except GrantStoreError as error:
            raise web.HTTPError(503, str(error)) from None
        self.write_json({"grant": record.to_json()}, status=201)

    async def delete(self, owner, viewer=None):
        owner = self.owner_for_request(owner)
        if not viewer:
            raise web.HTTPError(400, "Name the grant to revoke: DELETE api/grants/OWNER/VIEWER")
        try:
            record = await self.revoke(owner, viewer)
        except GrantStoreError as error:
            raise web.HTTPError(503, str(error)) from None
        if record is None:
            raise web.HTTPError(404, f"{owner} has no grant to {viewer[:60]!r}")
        self.write_json({"revoked": record.to_json()})
