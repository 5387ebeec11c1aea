# jupyterhub_config.py for a site whose Cylc UI servers run as PBS Pro or
# OpenPBS jobs (cylc-pbs), submitted with qsub on the hub host itself. The
# hub host is a PBS submission host, the hub runs as root, and its venv and
# the users' home directories are mounted on the compute nodes at the same paths.
import os
import sys

import cylc_hub
from cylc_hub.spawners.batch_api import port_handlers

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

state_dir = "/var/lib/cylc-hub"
policy_file = "/etc/cylc-hub/policy.toml"
service_port = 10101

# --- The hub and its proxy ------------------------------------------------
c.JupyterHub.bind_url = "https://cylc.example.org:443"
c.JupyterHub.ssl_cert = "/etc/cylc-hub/tls/cylc.example.org.crt"
c.JupyterHub.ssl_key = "/etc/cylc-hub/tls/cylc.example.org.key"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://cylc.example.org:8081"
c.JupyterHub.extra_handlers = port_handlers()
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.command = ["/opt/cylc-hub/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = f"{state_dir}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state_dir}/cookie_secret"
c.JupyterHub.cleanup_servers = False
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"hubadmin"}

# --- cylc-pbs ---------------------------------------------------------------
c.JupyterHub.spawner_class = "cylc-pbs"
# Offered in the form; the first is the default.
c.CylcPBSSpawner.queues = ["interactive", "workq"]
# Adds a memory field of up to 16384 MB to the form (0 keeps the queue's default).
c.CylcBatchSpawner.max_memory_mb = 16384
c.CylcBatchSpawner.scheduler_environment = {"PBS_CONF_FILE": "/etc/pbs.conf"}
# One qstat for every job each 15 seconds.
c.CylcBatchSpawner.batch_poll_interval = 15
c.CylcBatchSpawner.ui_authorization_root = "/shared/cylc-hub/ui-authorization"
c.CylcBatchSpawner.cmd = [os.path.join(sys.prefix, "bin", "cylc"), "hubapp"]
c.CylcBatchSpawner.policy_file = policy_file
c.CylcBatchSpawner.access_service_url = f"http://127.0.0.1:{service_port}/services/cylc-access/"

# --- cylc-access: the list of viewable servers, and the hub shares ----------
c.JupyterHub.template_paths = [os.path.join(os.path.dirname(cylc_hub.__file__), "templates", "hub")]
access_slots = 32
c.JupyterHub.load_groups = {
    f"cylc-access-{slot}-{kind}": {"users": []}
    for slot in range(access_slots)
    for kind in ("viewers", "owners")
}
c.JupyterHub.services = [
    {
        "name": "cylc-access",
        "url": f"http://127.0.0.1:{service_port}",
        "command": [
            sys.executable,
            "-m",
            "cylc_hub.services.access",
            f"--policy={policy_file}",
            f"--grants-db-url=sqlite:///{state_dir}/cylc-access-grants.sqlite",
            "--sweep-interval=60",
            f"--access-slots={access_slots}",
        ],
        "oauth_no_confirm": True,
        "display": True,
    }
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=cylc-access"]},
    {
        "name": "server",
        "scopes": ["users:activity!user", "access:servers!server", "access:services!service=cylc-access"],
    },
    {
        "name": "cylc-access",
        "services": ["cylc-access"],
        "scopes": [
            "list:users", "read:users", "read:servers", "read:users:name",
            "shares", "read:shares", "access:servers",
            "list:groups", "read:groups", "groups",
        ],
    },
] + [
    {
        "name": f"cylc-access-{slot}",
        "scopes": [f"access:servers!group=cylc-access-{slot}-owners"],
        "groups": [f"cylc-access-{slot}-viewers"],
    }
    for slot in range(access_slots)
]
