"""The admin page and API that explain the decision for any owner and viewer."""

import json

from tornado import web

from cylc_hub.services.access.handlers import APIHandler, BaseHandler


def explanation(reconciler, owner, viewer):
    """Return the decision for ``viewer`` on ``owner``'s server with the groups it used."""
    decision = reconciler.decide(owner, viewer)
    policy = reconciler.policy_store.policy
    body = decision.to_json()
    body["owner_groups"] = sorted(policy.groups_of(owner, reconciler.hub_groups_of(owner)))
    body["user_groups"] = sorted(policy.groups_of(viewer, reconciler.hub_groups_of(viewer)))
    body["grants"] = [
        {"viewer": selector, "permissions": list(permissions)}
        for selector, permissions in reconciler.grants_of(owner)
    ]
    body["hub_access"] = "read" in decision.permissions
    return body


def require_admin(handler):
    if not handler.current_user.get("admin"):
        raise web.HTTPError(403, "Only hub admins may explain other users' decisions")


class ExplainAPIHandler(APIHandler):
    """``GET api/explain?owner=OWNER&user=VIEWER``: the decision, matched rules and grants, and reasons."""

    def get(self):
        require_admin(self)
        owner = self.get_query_argument("owner", "")
        viewer = self.get_query_argument("user", "")
        if not owner or not viewer:
            raise web.HTTPError(400, "Missing query argument: give both 'owner' and 'user'")

        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(explanation(self.reconciler, owner, viewer)))


class ExplainPageHandler(BaseHandler):
    """``GET explain``: a form for an owner and a viewer, and the explanation."""

    @web.authenticated
    async def get(self):
        require_admin(self)
        owner = self.get_query_argument("owner", "").strip()
        viewer = self.get_query_argument("user", "").strip()
        await self.reconciler.refresh_users()

        result = explanation(self.reconciler, owner, viewer) if owner and viewer else None
        template = self.settings["jinja_env"].get_template("access/explain.html")
        self.finish(
            template.render(
                viewer=self.current_user["name"],
                owner_name=owner,
                user_name=viewer,
                result=result,
                hub_prefix=self.hub_prefix,
                service_prefix=self.settings["service_prefix"],
            )
        )
