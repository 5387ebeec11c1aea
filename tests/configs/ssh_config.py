"""Test config: the repository's jupyterhub_config.py with cylc-ssh on the test sshd hosts.

Environment variables, set by the SSH test fixtures:

  CYLC_HUB_SSH_HOSTS        comma-separated host:port entries of remote_hosts
  CYLC_HUB_SSH_KEY          the hub's private key, accepted for every test user
  CYLC_HUB_SSH_KNOWN_HOSTS  known_hosts file naming the test hosts
  CYLC_HUB_SSH_TUNNEL       "1" to forward a hub-host port to each server
  CYLC_HUB_SSH_SELECTION    host_selection (default least-loaded)
  CYLC_HUB_SSH_OVERRIDES    JSON file of {user: {option: value}} that tests
                            change between spawns (read at every spawn)
"""

import json
import os
import sys

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

here = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(here, "..", "..", "jupyterhub_config.py"))  # noqa: F821

c.JupyterHub.spawner_class = "cylc-ssh"
# Servers outlive the hub, so that a restarted hub adopts them.
c.JupyterHub.cleanup_servers = False

c.CylcSSHSpawner.remote_hosts = os.environ["CYLC_HUB_SSH_HOSTS"].split(",")
c.CylcSSHSpawner.ssh_keyfile = os.environ["CYLC_HUB_SSH_KEY"]
c.CylcSSHSpawner.known_hosts = os.environ["CYLC_HUB_SSH_KNOWN_HOSTS"]
c.CylcSSHSpawner.tunnel = os.environ.get("CYLC_HUB_SSH_TUNNEL") == "1"
c.CylcSSHSpawner.host_selection = os.environ.get("CYLC_HUB_SSH_SELECTION", "least-loaded")
c.CylcSSHSpawner.policy_file = os.environ["CYLC_HUB_POLICY"]
c.CylcSSHSpawner.access_service_url = c.CylcLocalSpawner.access_service_url
# The test hosts are this machine: each sshd sets its own CYLC_HUB_TEST_LOAD,
# so that the two hosts differ in load.
c.CylcSSHSpawner.load_command = ["sh", "-c", 'echo "${CYLC_HUB_TEST_LOAD:-1}"']
c.CylcSSHSpawner.load_cache_seconds = 2
# A prologue as a site would write one, so that the default "cylc hubapp" is found.
c.CylcSSHSpawner.cmd = ["cylc", "hubapp"]
c.CylcSSHSpawner.prologue = f"export PATH={os.path.join(sys.prefix, 'bin')}:$PATH"
c.CylcSSHSpawner.connect_timeout = 5
c.CylcSSHSpawner.poll_interval = 5
c.CylcSSHSpawner.start_timeout = 60
c.CylcSSHSpawner.stop_grace_seconds = 2

overrides_path = os.environ.get("CYLC_HUB_SSH_OVERRIDES")


def apply_overrides(spawner):
    """Set the options that the test wrote for this user, restoring those of the last spawn."""
    originals = spawner.__dict__.setdefault("_test_originals", {})
    for name, value in originals.items():
        setattr(spawner, name, value)
    originals.clear()

    overrides = {}
    if overrides_path and os.path.exists(overrides_path):
        with open(overrides_path) as file:
            overrides = json.load(file).get(spawner.user.name, {})
    for name, value in overrides.items():
        originals[name] = getattr(spawner, name)
        setattr(spawner, name, value)


c.Spawner.pre_spawn_hook = apply_overrides
