"""Test config: the repository's jupyterhub_config.py with more fields in cylc-local's form.

The fields are walltime, memory, and a partition whose choices depend on the cluster.

Members of the OS group ``ops`` (carol, made by scripts/users.sh) may ask
for 24 hours of walltime, everyone else for 4 hours. cylc-local ignores
these values when it starts the UI server: the tests check the form only.
"""

import os

from cylc_hub.spawners.local import DEFAULT_FORM_FIELDS

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

config_dir = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(config_dir, "..", "..", "jupyterhub_config.py"))  # noqa: F821

c.CylcLocalSpawner.form_fields = [
    *DEFAULT_FORM_FIELDS,
    {
        "name": "walltime",
        "type": "duration",
        "label": "Walltime",
        "help": "How long the server may run, such as 90m, 2h or 1:30:00.",
        "min": "10m",
        "max": "4h",
        "default": "1h",
        "groups": {"ops": {"max": "24h"}},
    },
    {
        "name": "memory",
        "type": "memory",
        "label": "Memory",
        "help": "Such as 512M or 4G.",
        "min": "256M",
        "max": "16G",
        "default": "2G",
    },
    {"name": "cluster", "type": "choice", "label": "Cluster", "choices": ["alpha", "beta"]},
    {
        "name": "partition",
        "type": "choice",
        "label": "Partition",
        "depends_on": "cluster",
        "choices": {"alpha": ["short", "long"], "beta": ["gpu"]},
    },
]
