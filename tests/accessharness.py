"""A hub for the cylc-access fault, load and hostile-input tests, and clients for it.

``start_access_hub`` runs the repository's jupyterhub_config.py with alice as
admin, a short sweep interval and, when asked, the grants database at another
URL. Hub users created through the API need no OS account there, so tests can
use names that no OS allows. Requests go through the proxy with a hub API token in a header, as an API
client sends them, or with a logged-in browser session.
"""

import os
import re
import signal
import subprocess
from pathlib import Path

import requests

from hubharness import ROOT, start_hub, wait_for

SERVICE = "/services/cylc-access"

TEST_CONFIG = """
import os
load_subconfig(os.environ["CYLC_HUB_BASE_CONFIG"])
c.Authenticator.admin_users = {"alice"}

from jupyterhub.auth import PAMAuthenticator


# PAM logins for the OS test users; users made through the API need no OS account.
class HubOnlyUsersAuthenticator(PAMAuthenticator):
    def system_user_exists(self, user):
        return True


c.JupyterHub.authenticator_class = HubOnlyUsersAuthenticator

# The faults tests put the grants database on a file system they can fill.
grants_db_url = os.environ.get("CYLC_ACCESS_TEST_GRANTS_DB_URL")
if grants_db_url:
    service = c.JupyterHub.services[0]
    service["command"] = [
        argument for argument in service["command"] if not argument.startswith("--grants-db-url=")
    ] + ["--grants-db-url=" + grants_db_url]
"""


def start_access_hub(
    password, directory, policy_text, *, sweep_seconds=3, grants_db_url=None, extra_env=None
):
    """Start a hub whose cylc-access service reads ``policy_text``; return it.

    ``directory`` contains the policy source and the generated test config;
    ``extra_env`` adds environment variables, such as ``CYLC_HUB_ACCESS_SLOTS``.
    """
    directory = Path(directory)
    policy = directory / "policy.toml"
    policy.write_text(policy_text)
    config = directory / "jupyterhub_config.py"
    config.write_text(TEST_CONFIG)

    extra_env = {
        "CYLC_HUB_BASE_CONFIG": str(ROOT / "jupyterhub_config.py"),
        "CYLC_HUB_SWEEP_INTERVAL": str(sweep_seconds),
        **(extra_env or {}),
    }
    if grants_db_url:
        extra_env["CYLC_ACCESS_TEST_GRANTS_DB_URL"] = grants_db_url
    return start_hub(password, policy_source=policy, config=config, extra_env=extra_env)


def xsrf_of(page):
    """Return the ``_xsrf`` form value of a service page."""
    return re.search(r'name="_xsrf" value="([^"]*)"', page.text).group(1)


def create_token(hub, session, user, note):
    """Create a hub API token for ``user`` through ``session`` (``user`` or an admin)."""
    response = hub.api(session, "POST", f"/users/{user}/tokens", json={"note": note})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def token_client(token):
    """Return a requests session that sends ``token`` in the Authorization header."""
    client = requests.Session()
    client.headers["Authorization"] = f"token {token}"
    return client


def hub_api(hub, token, method, path, **kwargs):
    """Send one hub REST API request with ``token``."""
    return requests.request(
        method,
        f"{hub.url}/hub/api{path}",
        headers={"Authorization": f"token {token}"},
        timeout=60,
        **kwargs,
    )


def create_hub_user(hub, admin_token, name):
    """Create the hub user ``name`` (no OS account needed); return the hub's response."""
    return hub_api(hub, admin_token, "POST", "/users", json={"usernames": [name]})


def start_server(hub, session, user):
    """Start ``user``'s Cylc UI server through the hub API and wait until it is ready."""
    response = hub.api(session, "POST", f"/users/{user}/server")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(session, user)


def user_shares(hub, admin_token, owner):
    """Return the set of user names that ``owner``'s default server is shared with."""
    response = hub_api(hub, admin_token, "GET", f"/shares/{owner}")
    response.raise_for_status()
    return {
        share["user"]["name"]
        for share in response.json()["items"]
        if share.get("user") and (share.get("server") or {}).get("name", "") == ""
    }


def group_members(hub, admin_token, prefix="cylc-access-"):
    """Return ``{group: set of users}`` of the hub groups whose names start with ``prefix``."""
    response = hub_api(hub, admin_token, "GET", "/groups")
    response.raise_for_status()
    return {
        group["name"]: set(group["users"])
        for group in response.json()
        if group["name"].startswith(prefix)
    }


def service_pid(hub):
    """Return the PID of the cylc-access process that ``hub`` started."""
    output = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(hub.process.pid)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pids = [
        int(line.split()[0])
        for line in output.splitlines()
        if "-m cylc_hub.services.access" in line
    ]
    assert len(pids) == 1, output
    return pids[0]


def kill_service(hub, signal_number=signal.SIGKILL):
    """Send ``signal_number`` to cylc-access; return the number of service starts before it."""
    starts = hub.log_text().count("cylc-access listening on")
    os.kill(service_pid(hub), signal_number)
    return starts


def wait_service_restart(hub, starts, timeout=90):
    """Wait until the hub has started cylc-access again after ``starts`` starts."""
    wait_for(
        lambda: hub.log_text().count("cylc-access listening on") > starts,
        timeout,
        interval=0.5,
        message="the hub to restart cylc-access",
    )
