"""Run the real JupyterHub from the repository's config, and talk to it like a browser would."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("CYLC_HUB_VENV", sys.prefix))
USERS = ("alice", "bob", "carol", "dave")


def free_port():
    """Return a TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout, interval=0.25, message="condition"):
    """Call ``condition`` until it returns a true value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@dataclass
class Hub:
    """A running JupyterHub process with its proxy, service and state directory."""

    url: str
    state_dir: Path
    policy_path: Path
    log_path: Path
    password: str
    process: subprocess.Popen = field(repr=False)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def login(self, user, password=None, attempts=3):
        """Return a requests session logged in as ``user`` through the hub's login form.

        A login is tried again after a short wait, because another test session
        may be rewriting /etc/shadow with the same password at that moment.
        """
        for attempt in range(1, attempts + 1):
            session = requests.Session()
            page = session.get(f"{self.url}/hub/login", timeout=30)
            page.raise_for_status()
            response = session.post(
                f"{self.url}/hub/login",
                data={
                    "username": user,
                    "password": password or self.password,
                    "_xsrf": session.cookies.get("_xsrf", path="/hub/"),
                },
                timeout=60,
                allow_redirects=False,
            )
            if response.status_code == 302:
                session.hub_user = user
                return session
            time.sleep(attempt)
        raise AssertionError(f"login as {user} failed: {response.status_code}")

    def api(self, session, method, path, **kwargs):
        """Send a hub REST API request with the session's cookie and XSRF token."""
        headers = kwargs.pop("headers", {})
        headers["X-XSRFToken"] = session.cookies.get("_xsrf", path="/hub/") or ""
        return session.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kwargs
        )

    def open(self, session, path, **kwargs):
        """GET a proxied page, confirming the hub's OAuth page for another user's server."""
        response = session.get(f"{self.url}{path}", timeout=60, **kwargs)
        if "/hub/api/oauth2/authorize" in response.url and response.ok:
            form = {
                "_xsrf": re.search(r'name="_xsrf" value="([^"]*)"', response.text).group(1),
                "scopes": re.findall(r'name="scopes" value="([^"]*)"', response.text),
            }
            response = session.post(response.url, data=form, timeout=60, **kwargs)
        return response

    def graphql(self, session, owner, query):
        """POST a GraphQL document to ``owner``'s Cylc UI server through the proxy."""
        self.open(session, f"/user/{owner}/cylc/")
        xsrf = session.cookies.get("_xsrf", path=f"/user/{owner}/") or ""
        return session.post(
            f"{self.url}/user/{owner}/cylc/graphql",
            json={"query": query},
            headers={"X-XSRFToken": xsrf},
            timeout=60,
        )

    def server_model(self, session, user):
        response = self.api(session, "GET", f"/users/{user}")
        response.raise_for_status()
        return response.json()["servers"].get("")

    def wait_ready(self, session, user, timeout=120):
        """Wait until ``user``'s default server is ready and return its model."""

        def ready():
            model = self.server_model(session, user)
            if model is None:
                raise AssertionError(f"{user}'s server stopped while starting:\n{self.log_tail()}")
            return model if model["ready"] else None

        return wait_for(ready, timeout, interval=1, message=f"{user}'s server")

    def stop_server(self, session, user, timeout=60):
        response = self.api(session, "DELETE", f"/users/{user}/server")
        assert response.status_code in (202, 204), response.text
        wait_for(
            lambda: self.server_model(session, user) is None,
            timeout,
            message=f"{user}'s server to stop",
        )

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])


def start_hub(
    password,
    policy_source=ROOT / "demo" / "policy.toml",
    config=ROOT / "jupyterhub_config.py",
    extra_env=None,
):
    """Start the hub from ``config`` on free loopback ports; wait until its API responds.

    ``config`` defaults to the repository's ``jupyterhub_config.py``; a test
    config may load it with ``load_subconfig`` and change what it needs.
    ``extra_env`` adds environment variables for the hub and what it starts.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="cylc-hub-test-"))
    policy_path = state_dir / "policy.toml"
    shutil.copy(policy_source, policy_path)

    # The UI servers run as the test users, who must be able to read their authorization.
    ui_authorization = Path(tempfile.mkdtemp(prefix="cylc-hub-ui-authorization-"))
    ui_authorization.chmod(0o755)

    port = free_port()
    env = dict(
        os.environ,
        CYLC_HUB_STATE_DIR=str(state_dir / "hub"),
        CYLC_HUB_POLICY=str(policy_path),
        CYLC_HUB_UI_AUTHORIZATION=str(ui_authorization),
        CYLC_HUB_PORT=str(port),
        CYLC_HUB_API_PORT=str(free_port()),
        CYLC_HUB_PROXY_API_PORT=str(free_port()),
        CYLC_HUB_SERVICE_PORT=str(free_port()),
        **(extra_env or {}),
    )
    log_path = state_dir / "hub.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [str(VENV / "bin" / "jupyterhub"), "-f", str(config)],
            cwd=state_dir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    hub = Hub(f"http://127.0.0.1:{port}", state_dir, policy_path, log_path, password, process)

    def answering():
        if process.poll() is not None:
            raise RuntimeError(f"the hub exited with {process.returncode}:\n{hub.log_tail()}")
        try:
            return requests.get(f"{hub.url}/hub/api/", timeout=5).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(answering, 60, message="the hub to answer")
        wait_for(
            lambda: "cylc-access listening on" in hub.log_text(),
            60,
            message="cylc-access to listen",
        )
    except BaseException:
        stop_hub(hub)
        raise
    return hub


def stop_hub(hub, timeout=60):
    """Stop the hub by its PID; it stops the proxy, the service and the servers it started."""
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(hub.process.pid, signal.SIGKILL)
            hub.process.wait(10)


def workflow_names_in(text):
    """Return the workflow names listed in a Cylc GraphQL ``workflows`` response."""
    return re.findall(r'"name":\s*"([^"]+)"', text)
