"""JupyterHub spawners, options form and access service for the Cylc UI Server."""

__version__ = "0.1.0"
