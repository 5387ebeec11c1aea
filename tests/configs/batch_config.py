"""Test config: the repository's jupyterhub_config.py with cylc-slurm or cylc-pbs.

Environment variables, set by the batch test fixtures:

  CYLC_HUB_BATCH_SPAWNER  cylc-slurm (default) or cylc-pbs
  SLURM_CONF              the test cluster's slurm.conf (cylc-slurm)
  PATH                    starts with the PBS stand-in commands (cylc-pbs)
  CYLC_HUB_BATCH_SUBMIT_HOST  host:port of an sshd to submit through (optional)
  CYLC_HUB_SSH_KEY, CYLC_HUB_SSH_KNOWN_HOSTS  the hub's key and the sshd's known_hosts
"""

import os

from cylc_hub.spawners.batch_api import port_handlers

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

here = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(here, "..", "..", "jupyterhub_config.py"))  # noqa: F821

c.JupyterHub.spawner_class = os.environ.get("CYLC_HUB_BATCH_SPAWNER", "cylc-slurm")
c.JupyterHub.extra_handlers = port_handlers()
# Jobs outlive the hub, so that a restarted hub adopts them.
c.JupyterHub.cleanup_servers = False
c.Spawner.poll_interval = 2

c.CylcBatchSpawner.policy_file = os.environ["CYLC_HUB_POLICY"]
c.CylcBatchSpawner.access_service_url = c.CylcLocalSpawner.access_service_url
if "CYLC_HUB_UI_AUTHORIZATION" in os.environ:
    c.CylcBatchSpawner.ui_authorization_root = os.environ["CYLC_HUB_UI_AUTHORIZATION"]
# The test node is this machine, and tests send traffic to loopback only.
c.CylcBatchSpawner.ip = "127.0.0.1"
c.CylcBatchSpawner.node_address = "127.0.0.1"
c.CylcBatchSpawner.batch_poll_interval = 1
c.CylcBatchSpawner.batch_poll_max_interval = 4
c.CylcBatchSpawner.batch_command_timeout = 20
c.CylcBatchSpawner.start_timeout = 180
# "gone" is offered by the form but not configured in Slurm, so sbatch rejects it.
c.CylcSlurmSpawner.partitions = ["debug", "gone"]
c.CylcPBSSpawner.queues = ["workq", "gone"]

if os.environ.get("CYLC_HUB_BATCH_SUBMIT_HOST"):
    host, port = os.environ["CYLC_HUB_BATCH_SUBMIT_HOST"].rsplit(":", 1)
    c.CylcBatchSpawner.submit_host = host
    c.CylcBatchSpawner.ssh_port = int(port)
    c.CylcBatchSpawner.ssh_keyfile = os.environ["CYLC_HUB_SSH_KEY"]
    c.CylcBatchSpawner.known_hosts = os.environ["CYLC_HUB_SSH_KNOWN_HOSTS"]
    c.CylcBatchSpawner.query_user = "carol"
    # The login node's sessions do not carry the test cluster's config path.
    c.CylcBatchSpawner.scheduler_environment = {"SLURM_CONF": os.environ["SLURM_CONF"]}


def break_python_for_dave(spawner):
    """Make dave's job fail at once, as a job without its Python on the node would."""
    if spawner.user.name == "dave":
        spawner.python = "/nonexistent/python3"


c.Spawner.pre_spawn_hook = break_python_for_dave
