"""The cylc-access service application: configuration, web app and periodic work."""

import asyncio
import os
import signal
from urllib.parse import urlparse

import jinja2
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Application

from cylc_hub.services.access.explain_handlers import ExplainAPIHandler, ExplainPageHandler
from cylc_hub.services.access.grant_handlers import GrantsAPIHandler, GrantsPageHandler
from cylc_hub.services.access.grants_store import GrantStore
from cylc_hub.services.access.handlers import (
    AuthorizationAPIHandler,
    ListPageHandler,
    OpenHandler,
    PermissionsAPIHandler,
    ViewableAPIHandler,
)
from cylc_hub.services.access.hub_client import HubClient
from cylc_hub.services.access.logs import QueryFreeErrors, log_request, route_library_logs
from cylc_hub.services.access.policy_store import PolicyStore
from cylc_hub.services.access.reconcile import Reconciler

#: The JSON API's routes below the service prefix, each described in openapi.yaml.
API_ROUTES = [
    ("api/viewable", ViewableAPIHandler),
    (r"api/permissions/([^/]+)", PermissionsAPIHandler),
    ("api/explain", ExplainAPIHandler),
    (r"api/authorization/([^/]+)", AuthorizationAPIHandler),
    (r"api/grants/([^/]+)", GrantsAPIHandler),
    (r"api/grants/([^/]+)/([^/]+)", GrantsAPIHandler),
]

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "templates")


class OAuthCallbackHandler(QueryFreeErrors, HubOAuthCallbackHandler):
    """The hub OAuth callback, logging errors without the code in the query."""


class CylcAccessService(Application):
    """Show each person the Cylc UI servers they may view and make the hub enforce it."""

    name = "cylc-access"
    description = __doc__

    aliases = {
        "policy": "CylcAccessService.policy_file",
        "sweep-interval": "CylcAccessService.sweep_interval",
        "config": "CylcAccessService.config_file",
        "grants-db-url": "CylcAccessService.grants_db_url",
        "access-slots": "CylcAccessService.access_slots",
        "page-size": "CylcAccessService.list_page_size",
    }

    config_file = Unicode("", help="Path of a Python traitlets config file to load.").tag(
        config=True
    )

    policy_file = Unicode(
        help="""Path of the site policy (TOML).

        The file is checked for changes every ``policy_check_interval`` seconds;
        an invalid file is rejected with its errors in the log and the last good
        policy stays in force.
        """,
    ).tag(config=True)

    sweep_interval = Float(
        60,
        min=1,
        help="Seconds between two sweeps that make every hub share match the policy.",
    ).tag(config=True)

    policy_check_interval = Float(
        2, min=0.1, help="Seconds between two checks of the policy file for changes."
    ).tag(config=True)

    policy_settle_time = Float(
        1,
        min=0,
        help="""Seconds a changed policy file must stay unmodified before it is loaded.

        A file written in place is partly written for a moment; this keeps the
        service from loading it then. 0 loads a change at the next check. The
        file is loaded at start whatever its age.
        """,
    ).tag(config=True)

    hub_concurrency = Integer(
        8, min=1, help="Most hub API requests that one sweep sends at a time."
    ).tag(config=True)

    ui_path = Unicode(
        "cylc/", help="Path of the Cylc UI below a user's server URL, for the list's links."
    ).tag(config=True)

    grants_db_url = Unicode(
        "sqlite:///cylc-access-grants.sqlite",
        help="""SQLAlchemy database URL of the owners' grants.

        The default is a SQLite file in the service's working directory; any
        SQLAlchemy URL works, such as ``postgresql://cylc@db/cylc_access``.
        The table ``cylc_access_grants`` is created when missing.
        """,
    ).tag(config=True)

    access_slots = Integer(
        0,
        min=0,
        help="""Number of slot group pairs and roles that jupyterhub_config.py defines.

        Slot N is the hub groups ``cylc-access-N-viewers`` and
        ``cylc-access-N-owners`` and a role that gives the first
        ``access:servers!group=`` the second. Each viewer class takes one slot;
        classes beyond this number, and every class when it is 0, are served
        with one user share per viewer and owner.
        """,
    ).tag(config=True)

    grant_expiry_interval = Float(
        1,
        min=0.1,
        help="Seconds between two checks for grants that have passed their end.",
    ).tag(config=True)

    list_page_size = Integer(
        50, min=1, max=1000, help="Number of servers on one page of the list."
    ).tag(config=True)

    service_url = Unicode(
        help="URL the service listens on. Default: $JUPYTERHUB_SERVICE_URL, set by the hub."
    ).tag(config=True)

    @default("log_level")
    def _default_log_level(self):
        return "INFO"

    @default("log_format")
    def _default_log_format(self):
        return "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
        if not self.policy_file:
            self.log.critical("No policy file: set --policy=FILE or CylcAccessService.policy_file")
            self.exit(2)

    def make_app(self):
        """Build the tornado application; the hub gives the prefix through the environment."""
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/cylc-access/")
        hub_auth = HubOAuth.instance(cache_max_age=60)
        hub_client = HubClient(hub_auth.api_url, hub_auth.api_token, log=self.log)
        self.policy_store = PolicyStore(
            self.policy_file, settle=self.policy_settle_time, log=self.log
        )
        self.grant_store = GrantStore(self.grants_db_url, log=self.log)
        self.reconciler = Reconciler(
            hub_client,
            self.policy_store,
            grant_store=self.grant_store,
            slots=self.access_slots,
            concurrency=self.hub_concurrency,
            log=self.log,
        )

        hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/") + "hub/"
        route_library_logs(self.log)
        settings = {
            "log_function": log_request,
            "hub_auth": hub_auth,
            "reconciler": self.reconciler,
            "policy_store": self.policy_store,
            "grant_store": self.grant_store,
            "service_log": self.log,
            "hub_prefix": hub_prefix,
            "users_prefix": os.environ.get("JUPYTERHUB_BASE_URL", "/") + "user/",
            "service_prefix": prefix,
            "ui_path": self.ui_path,
            "list_page_size": self.list_page_size,
            "cookie_secret": os.urandom(32),
            "jinja_env": jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True
            ),
            "login_url": hub_auth.login_url,
        }
        handlers = [
            (prefix, ListPageHandler),
            (url_path_join(prefix, "oauth_callback"), OAuthCallbackHandler),
            (url_path_join(prefix, "grants"), GrantsPageHandler),
            (url_path_join(prefix, r"open/([^/]+)"), OpenHandler),
            (url_path_join(prefix, "explain"), ExplainPageHandler),
        ]
        handlers += [(url_path_join(prefix, path), handler) for path, handler in API_ROUTES]
        return web.Application(handlers, **settings)

    async def watch_policy(self):
        """Reload the policy on change and reconcile at once when a new one takes effect."""
        while True:
            try:
                if self.policy_store.reload_if_changed():
                    asyncio.ensure_future(self.reconciler.sweep())
            except Exception:
                # The store rejects bad files itself; this keeps the watch alive past a bug.
                self.log.exception("Policy check failed; checking again in %s s", self.policy_check_interval)
            await asyncio.sleep(self.policy_check_interval)

    async def expire_grants_forever(self):
        """Revoke grants as they pass their end, without waiting for the next sweep."""
        while True:
            try:
                await self.reconciler.expire_and_reconcile()
            except Exception:
                self.log.exception("Expiring grants failed; retrying in %s s", self.grant_expiry_interval)
            await asyncio.sleep(self.grant_expiry_interval)

    async def sweep_forever(self):
        """Run the periodic sweep; an error in one sweep is logged and the next one runs."""
        while True:
            try:
                await self.reconciler.sweep()
            except Exception:
                self.log.exception("Sweep failed; the next one runs in %s s", self.sweep_interval)
            await asyncio.sleep(self.sweep_interval)

    async def serve(self):
        app = self.make_app()
        url = urlparse(self.service_url)
        app.listen(url.port, url.hostname)
        self.log.info("cylc-access listening on %s, policy %s", self.service_url, self.policy_file)

        self.policy_store.reload_if_changed(settle=False)
        tasks = [
            asyncio.ensure_future(self.watch_policy()),
            asyncio.ensure_future(self.sweep_forever()),
            asyncio.ensure_future(self.expire_grants_forever()),
        ]

        # The hub stops a managed service with SIGINT or SIGTERM: finish cleanly on either.
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopping.set)
        await stopping.wait()

        self.log.info("cylc-access stopping")
        for task in tasks:
            task.cancel()

    def start(self):
        asyncio.run(self.serve())


def main(argv=None):
    """Run the service until it is stopped."""
    service = CylcAccessService.instance()
    service.initialize(argv)
    service.start()
