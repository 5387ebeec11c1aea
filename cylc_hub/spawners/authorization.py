"""Spawner mixin that decides the UI server's authorization when a server starts."""

import asyncio
import os

from jupyterhub import orm
from sqlalchemy.orm import object_session
from traitlets import HasTraits, Unicode

from cylc_hub.spawners.ui_authorization import (
    fetch_site_authorization,
    load_decisions,
    render_config,
    site_authorization,
    write_config,
)


class UIAuthorizationMixin(HasTraits):
    """Options and steps shared by the cylc-hub spawners to hand decisions to the UI server.

    Each spawner calls :meth:`decide_ui_authorization` in ``start()`` and
    delivers the result its own way: a file on the hub host, in the batch
    job's view of it, or over SSH.
    """

    policy_file = Unicode(
        "",
        help="""Path of the site policy (TOML) whose decisions the UI server enforces.

        Use the same file as the cylc-access service. Empty: the UI server
        grants nobody but its owner, unless ``access_service_url`` responds.
        """,
    ).tag(config=True)

    access_service_url = Unicode(
        "",
        help="""URL of the cylc-access service, such as http://127.0.0.1:10101/services/cylc-access/.

        When set, each start requests the decisions from the service, owners' grants
        included, with the server's own token. When empty, or when the service
        does not respond, the decisions come from ``policy_file`` without grants.
        """,
    ).tag(config=True)

    async def decide_ui_authorization(self):
        """Return Cylc's ``site_authorization`` for this owner's server, and where it came from."""
        owner = self.user.name
        if self.access_service_url:
            authorization = await fetch_site_authorization(
                self.access_service_url, owner, self.api_token, log=self.log
            )
            if authorization is not None:
                return authorization, "cylc-access"

        # Parsing a large policy must not hold up the hub's event loop.
        policy = await asyncio.to_thread(load_decisions, self.policy_file, owner)
        if policy is None:
            return {}, "no valid policy"
        return site_authorization(policy, owner, self.viewer_names(policy)), "the policy file"

    def viewer_names(self, policy):
        """Return every user who may need an entry: hub users and the policy's group members."""
        # Spawner.db is deprecated, so the query uses the session of the spawner's own row.
        names = {name for (name,) in object_session(self.orm_spawner).query(orm.User.name)}
        for members in policy.groups.values():
            names.update(members)
        return names

    def log_level_args(self, args):
        """Return a copy of ``args`` with the form's validated log level added, if any."""
        args = list(args)
        log_level = self.form_values.get("log_level")
        if log_level:
            # A validated choice, passed as one argument with no shell in between.
            args.append(f"--ServerApp.log_level={log_level}")
        return args


class AuthorizationFileMixin(UIAuthorizationMixin):
    """Deliver the decisions as a config file on this host's file system.

    The server finds the file through ``JUPYTER_CONFIG_PATH``. For a batch
    job the compute nodes must see ``ui_authorization_root`` at the same path.
    """

    ui_authorization_root = Unicode(
        "/var/lib/cylc-hub/ui-authorization",
        help="""Directory below which each user's UI server authorization is written.

        Each user gets a subdirectory readable by root and that user's group
        only. Batch spawners need it at the same path on the compute nodes.
        """,
    ).tag(config=True)

    @property
    def ui_authorization_dir(self):
        return os.path.join(self.ui_authorization_root, self.user.name)

    async def write_ui_authorization(self):
        """Write the UI server's authorization for this owner; no policy grants nobody."""
        owner = self.user.name
        authorization, source = await self.decide_ui_authorization()
        path = write_config(self.ui_authorization_dir, owner, render_config(authorization))
        viewers = sorted(authorization.get(owner, {}))
        self.log.info(
            "UI authorization for %s from %s written to %s: viewers %s", owner, source, path, viewers
        )

    def get_env(self):
        env = super().get_env()
        inherited = env.get("JUPYTER_CONFIG_PATH")
        paths = [self.ui_authorization_dir] + ([inherited] if inherited else [])
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
        return env
