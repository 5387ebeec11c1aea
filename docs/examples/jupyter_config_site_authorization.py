# A cylc-uiserver 1.7 site configuration (jupyter_config.py) whose
# site_authorization `cylc-hub policy convert` turns into a TOML policy.
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CylcUIServer.site_authorization = {
    "*": {
        "*": {"default": "READ"},
        "group:ops": {"default": ["READ", "CONTROL"], "limit": "ALL"},
    },
    "op-forecast": {
        "group:forecasters": {"default": ["READ", "CONTROL", "!stop"]},
    },
}
