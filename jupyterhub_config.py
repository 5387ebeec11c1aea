"""JupyterHub configuration for cylc-hub: the embedded demo default a site starts from.

Run it with ``make demo``, or ``jupyterhub -f jupyterhub_config.py`` as root
from the cylc-hub venv. Environment variables change the demo's places and
ports so that tests can run it side by side; a site edits the values instead.

  CYLC_HUB_STATE_DIR   hub database, cookie secret, proxy pid (default: ./var/demo)
  CYLC_HUB_POLICY      site policy file (default: ./demo/policy.toml)
  CYLC_HUB_USERS       comma-separated users allowed to log in (default: the demo users)
  CYLC_HUB_UI_AUTHORIZATION  where each UI server's authorization is written
                       (default: /var/lib/cylc-hub/ui-authorization)
  CYLC_HUB_PORT, CYLC_HUB_API_PORT, CYLC_HUB_PROXY_API_PORT, CYLC_HUB_SERVICE_PORT
                       loopback ports of the hub, its API, the proxy's API and cylc-access
  CYLC_HUB_ACCESS_SLOTS     hub groups cylc-access may use for viewer classes (default: 32)
  CYLC_HUB_SWEEP_INTERVAL   seconds between cylc-access share sweeps (default: 60)
  CYLC_HUB_LIST_PAGE_SIZE   owners per page of the cylc-access list (default: 50)
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

here = os.path.dirname(os.path.abspath(__file__))
state_dir = os.environ.get("CYLC_HUB_STATE_DIR", os.path.join(here, "var", "demo"))
policy_file = os.environ.get("CYLC_HUB_POLICY", os.path.join(here, "demo", "policy.toml"))
os.makedirs(state_dir, mode=0o700, exist_ok=True)


def port(name, fallback):
    return int(os.environ.get(name, fallback))


# The hub, its API and the proxy, all on loopback.
c.JupyterHub.bind_url = f"http://127.0.0.1:{port('CYLC_HUB_PORT', 8000)}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{port('CYLC_HUB_API_PORT', 8081)}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port('CYLC_HUB_PROXY_API_PORT', 8001)}"
c.ConfigurableHTTPProxy.command = [os.path.join(here, "node_modules", ".bin", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = os.path.join(state_dir, "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{os.path.join(state_dir, 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret_file = os.path.join(state_dir, "cookie_secret")
c.JupyterHub.cleanup_servers = True

# Log in with the hub host's accounts (PAM); only these users may log in.
users = os.environ.get("CYLC_HUB_USERS", "alice,bob,carol,dave")
c.Authenticator.allowed_users = {name.strip() for name in users.split(",") if name.strip()}

# Each user's Cylc UI Server runs on this host as that user, from this venv.
c.JupyterHub.spawner_class = "cylc-local"
c.Spawner.cmd = [os.path.join(sys.prefix, "bin", "cylc"), "hubapp"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.CylcLocalSpawner.policy_file = policy_file
if "CYLC_HUB_UI_AUTHORIZATION" in os.environ:
    c.CylcLocalSpawner.ui_authorization_root = os.environ["CYLC_HUB_UI_AUTHORIZATION"]

# The cylc-access service: the list of servers each person may view, and the hub shares.
service_port = port("CYLC_HUB_SERVICE_PORT", 10101)
# Spawners ask the service for each owner's decisions, owners' grants included.
c.CylcLocalSpawner.access_service_url = f"http://127.0.0.1:{service_port}/services/cylc-access/"
# The hub's home page shows that list too (cylc_hub/templates/hub/home.html).
c.JupyterHub.template_paths = [os.path.join(here, "cylc_hub", "templates", "hub")]
# Slot N lets the members of group cylc-access-N-viewers (one class of viewers that
# the policy treats alike) open the servers of the members of cylc-access-N-owners.
# cylc-access fills the groups. With more viewer classes than slots, the rest get one
# share per viewer and owner, and the service logs a warning.
access_slots = port("CYLC_HUB_ACCESS_SLOTS", 32)
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
            # Owners' grants; any SQLAlchemy URL works, such as postgresql://...
            f"--grants-db-url=sqlite:///{os.path.join(state_dir, 'cylc-access-grants.sqlite')}",
            # Seconds between sweeps that revoke shares made outside the policy.
            f"--sweep-interval={os.environ.get('CYLC_HUB_SWEEP_INTERVAL', '60')}",
            f"--access-slots={access_slots}",
            f"--page-size={os.environ.get('CYLC_HUB_LIST_PAGE_SIZE', '50')}",
        ],
        "oauth_no_confirm": True,
        "display": True,
    }
]

c.JupyterHub.load_roles = [
    {
        # "self" carries no "shares" scope, so users cannot share their servers
        # around the site policy; every user may open the cylc-access pages.
        "name": "user",
        "scopes": ["self", "access:services!service=cylc-access"],
    },
    {
        # A UI server may ask cylc-access for its visitors' permissions.
        "name": "server",
        "scopes": [
            "users:activity!user",
            "access:servers!server",
            "access:services!service=cylc-access",
        ],
    },
    {
        "name": "cylc-access",
        "services": ["cylc-access"],
        "scopes": [
            "list:users",
            "read:users",
            "read:servers",
            "read:users:name",
            "shares",
            "read:shares",
            # A share can only grant what its creator has: access to the owner's server.
            "access:servers",
            # The service fills the slot groups.
            "list:groups",
            "read:groups",
            "groups",
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

# --- Production sections (commented) --------------------------------------
#
# Keep servers running across hub restarts:
#   c.JupyterHub.cleanup_servers = False
#
# Any JupyterHub authenticator works, for example:
#   c.JupyterHub.authenticator_class = "ldapauthenticator.LDAPAuthenticator"
#
# The UI servers on login nodes over SSH (cylc-ssh) or as batch jobs
# (cylc-slurm, cylc-pbs) replace "cylc-local" as the spawner_class when
# those spawners are installed.

# --- Slurm and PBS (commented) ---------------------------------------------
#
# Each UI server runs as a batch job submitted as the user. The job reports
# the port its server bound to a hub API handler, which must be added:
#
#   from cylc_hub.spawners.batch_api import port_handlers
#   c.JupyterHub.extra_handlers = port_handlers()
#   c.JupyterHub.spawner_class = "cylc-slurm"        # or "cylc-pbs"
#   c.JupyterHub.cleanup_servers = False             # jobs outlive a hub restart
#   c.CylcBatchSpawner.policy_file = policy_file
#   c.CylcBatchSpawner.access_service_url = c.CylcLocalSpawner.access_service_url
#   c.CylcSlurmSpawner.partitions = ["interactive", "debug"]  # form choices
#   c.CylcSlurmSpawner.cluster = ""                  # multi-cluster sites: the cluster
#   c.CylcPBSSpawner.queues = ["workq"]
#   c.CylcBatchSpawner.batch_poll_interval = 10      # one squeue/qstat per interval for all jobs
#   c.CylcBatchSpawner.node_address = "{node}.ib.example.org"  # how the hub reaches a node
#   c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"          # jobs reach the hub API,
#   c.JupyterHub.hub_connect_url = "http://hub.example.org:8081"  # and report their port there
#
# Submit on a login node over the SSH spawner's pooled connections (host keys
# checked against known_hosts) instead of on the hub host: each user's
# commands run as that user, the shared queue query as query_user.
#
#   c.CylcBatchSpawner.submit_host = "login1.example.org"
#   c.CylcBatchSpawner.ssh_keyfile = "/etc/cylc-hub/ssh/id_ed25519"
#   c.CylcBatchSpawner.known_hosts = "/etc/cylc-hub/ssh/known_hosts"
#   c.CylcBatchSpawner.query_user = "cylchub"
#   c.CylcBatchSpawner.scheduler_environment = {"SLURM_CONF": "/etc/slurm/slurm.conf"}

# --- SSH to login nodes (commented) ----------------------------------------
#
# Each UI server runs on a login node as the user, started over SSH by the hub
# (asyncssh; one pooled connection per host and user). The hub token reaches
# the server on the SSH channel's stdin, never in a command line or a file.
#
#   c.JupyterHub.spawner_class = "cylc-ssh"
#   c.JupyterHub.cleanup_servers = False             # servers outlive a hub restart
#   c.CylcSSHSpawner.policy_file = policy_file
#   c.CylcSSHSpawner.access_service_url = c.CylcLocalSpawner.access_service_url
#   c.CylcSSHSpawner.remote_hosts = ["login1.example.org", "login2.example.org:2222"]
#   c.CylcSSHSpawner.host_selection = "least-loaded"  # or "random", "first"
#   c.CylcSSHSpawner.ssh_keyfile = "/etc/cylc-hub/keys/{username}"  # or "~/.ssh/id_cylc_hub"
#   c.CylcSSHSpawner.known_hosts = "/etc/cylc-hub/ssh/known_hosts"  # checking cannot be off
#   c.CylcSSHSpawner.prologue = "module load cylc"   # site shell lines before the server
#   c.CylcSSHSpawner.cmd = ["cylc", "hubapp"]
#   c.CylcSSHSpawner.tunnel = False                  # True if the proxy cannot reach the nodes
#   c.Spawner.hub_connect_url = "http://hub.example.org:8081"  # how the servers reach the hub API
