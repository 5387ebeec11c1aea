"""JupyterHub services of cylc-hub."""
