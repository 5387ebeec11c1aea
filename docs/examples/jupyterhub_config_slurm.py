# jupyterhub_config.py for a site whose Cylc UI servers run as Slurm jobs
# (cylc-slurm), submitted as each user on a login node over SSH. The hub runs
# as root from a venv on a file system that the compute nodes mount at the
# same path, because each job runs the hub's Python.
import os
import sys

import cylc_hub
from cylc_hub.spawners.batch_api import port_handlers
from cylc_hub.spawners.form_cache import sinfo_partition_choices
from cylc_hub.spawners.local import DEFAULT_FORM_FIELDS
from cylc_hub.spawners.slurm import CylcSlurmSpawner

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

state_dir = "/var/lib/cylc-hub"
policy_file = "/etc/cylc-hub/policy.toml"
service_port = 10101

# --- The hub and its proxy ------------------------------------------------
c.JupyterHub.bind_url = "https://cylc.example.org:443"
c.JupyterHub.ssl_cert = "/etc/cylc-hub/tls/cylc.example.org.crt"
c.JupyterHub.ssl_key = "/etc/cylc-hub/tls/cylc.example.org.key"
# Jobs on the compute nodes reach the hub's API, and report their port there.
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://cylc.example.org:8081"
c.JupyterHub.extra_handlers = port_handlers()
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.command = ["/opt/cylc-hub/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = f"{state_dir}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state_dir}/cookie_secret"
# Jobs keep running while the hub restarts, and the hub adopts them again.
c.JupyterHub.cleanup_servers = False
c.Authenticator.allow_all = True
# Admins must be accounts of the hub host (PAM).
c.Authenticator.admin_users = {"hubadmin"}


# --- cylc-slurm, with the form's QOS in the job script ----------------------
class SiteSlurmSpawner(CylcSlurmSpawner):
    """cylc-slurm that also passes the form's ``qos`` field to the job template."""

    def template_values(self):
        values = super().template_values()
        values["qos"] = self.form_values.get("qos", "")
        return values


c.JupyterHub.spawner_class = SiteSlurmSpawner
c.CylcBatchSpawner.job_template = "/etc/cylc-hub/slurm_site.sh.j2"
c.CylcBatchSpawner.submit_host = "login1.example.org"
c.CylcBatchSpawner.ssh_keyfile = "/etc/cylc-hub/ssh/id_ed25519"
c.CylcBatchSpawner.known_hosts = "/etc/cylc-hub/ssh/known_hosts"
c.CylcBatchSpawner.query_user = "cylchub"
c.CylcBatchSpawner.scheduler_environment = {"SLURM_CONF": "/etc/slurm/slurm.conf"}
c.CylcBatchSpawner.batch_poll_interval = 10
c.CylcBatchSpawner.node_address = "{node}.ib.example.org"
c.CylcBatchSpawner.job_directory = ".cylc/hub/jobs"
c.CylcBatchSpawner.ui_authorization_root = "/shared/cylc-hub/ui-authorization"
c.CylcBatchSpawner.cmd = [os.path.join(sys.prefix, "bin", "cylc"), "hubapp"]
c.CylcBatchSpawner.policy_file = policy_file
c.CylcBatchSpawner.access_service_url = f"http://127.0.0.1:{service_port}/services/cylc-access/"

# --- The options form -------------------------------------------------------
c.SiteSlurmSpawner.form_fields = [
    # The workflow to open first and the server's log level, as in cylc-local.
    *DEFAULT_FORM_FIELDS,
    {
        "name": "partition",
        "type": "choice",
        "label": "Partition",
        "help": "The partitions of the cluster, with their idle nodes.",
        "default": "interactive",
        # sinfo runs on the login node as query_user; its list is kept for 60 s.
        "choices": sinfo_partition_choices(ttl=60, transport=lambda spawner: spawner.transport(None)),
    },
    {
        "name": "qos",
        "type": "choice",
        "label": "Quality of service",
        "depends_on": "partition",
        # One key per partition that sinfo lists, because the form rejects a
        # partition without a key ("has no choices when partition is 'NAME'").
        "choices": {
            "interactive": ["normal"],
            "compute": [
                {"value": "normal", "label": "Normal"},
                {"value": "long", "label": "Long", "description": "up to 7 days, lower priority"},
            ],
        },
    },
    {
        # Whole minutes: cylc-slurm writes this number into #SBATCH --time.
        "name": "walltime",
        "type": "integer",
        "label": "Run time (minutes)",
        "help": "The server stops when this time is up.",
        "default": 120,
        "min": 10,
        "max": 480,
        "step": 10,
        # Operations staff may keep a UI server for a whole day.
        "groups": {"ops": {"max": 1440}},
    },
    {
        # Whole MiB: cylc-slurm writes this number into #SBATCH --mem.
        "name": "memory",
        "type": "memory",
        "label": "Memory",
        "help": "Such as 2G or 512M.",
        "default": "2G",
        "min": "1G",
        "max": "8G",
    },
    {
        "name": "accept_terms",
        "type": "checkbox",
        "label": "I have read the site's usage policy",
        "required": True,
    },
]

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
