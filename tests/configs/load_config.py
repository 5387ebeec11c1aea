"""Test config: many users spawning at once, with cylc-local or cylc-slurm.

Environment variables, set by the load test fixtures:

  CYLC_HUB_LOAD_SPAWNER  cylc-local (default): the repository's jupyterhub_config.py;
                         cylc-slurm: batch_config.py, which needs SLURM_CONF
"""

import os

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

config_dir = os.path.dirname(os.path.abspath(__file__))
if os.environ.get("CYLC_HUB_LOAD_SPAWNER") == "cylc-slurm":
    load_subconfig(os.path.join(config_dir, "batch_config.py"))  # noqa: F821
else:
    load_subconfig(os.path.join(config_dir, "..", "..", "jupyterhub_config.py"))  # noqa: F821

# Every test user spawns at once, so the hub must not reject any of them with a 429
# (JupyterHub 6.1's default limit is 100).
c.JupyterHub.concurrent_spawn_limit = 60
# On a small machine, fifty UI servers importing Cylc at once may each take
# minutes to respond. A start slower than these timeouts fails with a message.
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 240
