"""Test config: batch_config.py plus a service whose token may not report ports.

Environment variables, set by the hostile-input test fixtures, besides
those of batch_config.py:

  CYLC_HUB_TEST_SERVICE_TOKEN  API token of the service "intruder", which has
                               the scopes of a server token but is no server's
"""

import os

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

config_dir = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(config_dir, "batch_config.py"))  # noqa: F821

c.JupyterHub.services.append(
    {"name": "intruder", "api_token": os.environ["CYLC_HUB_TEST_SERVICE_TOKEN"]}
)
c.JupyterHub.load_roles.append(
    {
        "name": "intruder",
        "scopes": ["users:activity", "read:servers", "access:servers"],
        "services": ["intruder"],
    }
)
