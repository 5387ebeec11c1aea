"""cylc-local: start the Cylc UI Server on the hub host as the user's own OS account."""

import subprocess

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import default

from cylc_hub.spawners.authorization import AuthorizationFileMixin
from cylc_hub.spawners.form import OptionsFormMixin

# Cylc workflow names: path segments of letters, digits, "_", "-" and ".", none starting with ".".
WORKFLOW_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*"

DEFAULT_FORM_FIELDS = [
    {
        "name": "workflow",
        "type": "text",
        "label": "Workflow to open first",
        "help": "A workflow name such as demo or suite/run1; leave empty for the dashboard.",
        "default": "",
        "pattern": WORKFLOW_PATTERN,
        "max_length": 100,
    },
    {
        "name": "log_level",
        "type": "choice",
        "label": "UI server log level",
        "help": "DEBUG writes more detail to the server's log.",
        "default": "INFO",
        "choices": [
            {"value": "INFO", "label": "Info"},
            {"value": "DEBUG", "label": "Debug"},
        ],
    },
]


class CylcLocalSpawner(AuthorizationFileMixin, OptionsFormMixin, LocalProcessSpawner):
    """Start ``cylc hubapp`` as the user on the hub host, with the site's authorization.

    Before each start the spawner writes a ``jupyter_server_config.py`` with
    the policy's decisions for this owner into ``ui_authorization_root/USER``
    and puts that directory first on the server's ``JUPYTER_CONFIG_PATH``.
    """

    @default("popen_kwargs")
    def _default_popen_kwargs(self):
        # Without a terminal on stdin, jupyter_server stops on the hub's SIGINT at once
        # instead of asking on the hub's terminal whether to shut down.
        return {"stdin": subprocess.DEVNULL}

    @default("interrupt_timeout")
    def _default_interrupt_timeout(self):
        # cylc-uiserver 1.7 handles SIGINT as a KeyboardInterrupt that leaves its
        # workflow subscription threads running, so SIGTERM follows soon.
        return 2

    @default("term_timeout")
    def _default_term_timeout(self):
        # After SIGTERM the same threads can keep cylc-uiserver 1.7 alive for about
        # 30 s, until a workflow sends an update. The server keeps no state, so KILL is safe.
        return 5

    @default("cmd")
    def _default_cmd(self):
        return ["cylc", "hubapp"]

    @default("form_fields")
    def _default_form_fields(self):
        return DEFAULT_FORM_FIELDS

    def get_args(self):
        # Spawner.get_args returns self.args itself: log_level_args copies it, so
        # restarts do not stack options.
        return self.log_level_args(super().get_args())

    async def start(self):
        if not hasattr(self, "_configured_default_url"):
            self._configured_default_url = self.default_url
        workflow = self.form_values.get("workflow")
        if workflow:
            self.default_url = f"/cylc/#/workspace/~{self.user.name}/{workflow}"
        else:
            self.default_url = self._configured_default_url
        await self.write_ui_authorization()
        return await super().start()
