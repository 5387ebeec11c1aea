# jupyterhub_config.py for a site whose Cylc UI servers run on login nodes,
# started over SSH as each user (cylc-ssh). Run the hub as root:
#   /opt/cylc-hub/venv/bin/jupyterhub -f /etc/cylc-hub/jupyterhub_config.py
import os
import sys

import cylc_hub

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

state_dir = "/var/lib/cylc-hub"
policy_file = "/etc/cylc-hub/policy.toml"
service_port = 10101

# --- The hub and its proxy ------------------------------------------------
# People reach the hub on port 443; the servers on the login nodes reach the
# hub's API by the hub host's name.
c.JupyterHub.bind_url = "https://cylc.example.org:443"
c.JupyterHub.ssl_cert = "/etc/cylc-hub/tls/cylc.example.org.crt"
c.JupyterHub.ssl_key = "/etc/cylc-hub/tls/cylc.example.org.key"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://cylc.example.org:8081"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.command = ["/opt/cylc-hub/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = f"{state_dir}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state_dir}/cookie_secret"
# UI servers keep running while the hub restarts, and the hub adopts them again.
c.JupyterHub.cleanup_servers = False

# --- Who may log in ---------------------------------------------------------
# PAM on the hub host; any JupyterHub authenticator works.
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"hubadmin"}

# --- cylc-ssh: UI servers on the login nodes --------------------------------
c.JupyterHub.spawner_class = "cylc-ssh"
c.CylcSSHSpawner.remote_hosts = ["login1.example.org", "login2.example.org", "login3.example.org:2222"]
c.CylcSSHSpawner.host_selection = "least-loaded"
# The hub logs in as each user with a key kept for that user on the hub host.
c.CylcSSHSpawner.ssh_keyfile = "/etc/cylc-hub/keys/{username}"
c.CylcSSHSpawner.known_hosts = "/etc/cylc-hub/ssh/known_hosts"
c.CylcSSHSpawner.prologue = "module load cylc/8.5"
c.CylcSSHSpawner.cmd = ["cylc", "hubapp"]
c.CylcSSHSpawner.start_timeout = 120
c.CylcSSHSpawner.http_timeout = 90
c.CylcSSHSpawner.policy_file = policy_file
c.CylcSSHSpawner.access_service_url = f"http://127.0.0.1:{service_port}/services/cylc-access/"

# --- cylc-access: the list of viewable servers, and the hub shares ----------
# The hub's home page shows the list of servers each person may view.
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
