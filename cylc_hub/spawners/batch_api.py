"""The hub API handler through which a batch job reports the port its server bound.

Add it to the hub in ``jupyterhub_config.py``::

    from cylc_hub.spawners.batch_api import port_handlers
    c.JupyterHub.extra_handlers = port_handlers()

The handler accepts exactly ``{"port": N}`` with ``N`` an integer from 1 to
65535, and only with the API token of the very server whose job is waiting
for its port. Any other request is rejected, logged without the token, and
changes nothing.
"""

import json
import secrets

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

PORT_PATH = r"/api/cylc-batch/port"
MAX_BODY_BYTES = 1024


def port_handlers():
    """Return the handler list for ``c.JupyterHub.extra_handlers``."""
    return [(PORT_PATH, BatchPortHandler)]


def parse_port(body):
    """Return the port in a request body, or raise ``ValueError`` saying why it is invalid."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"body is longer than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"body is not JSON: {error}") from None
    if not isinstance(data, dict) or set(data) != {"port"}:
        raise ValueError('body must be exactly {"port": N}')
    port = data["port"]
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"port must be an integer, not {type(port).__name__}")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return port


class BatchPortHandler(APIHandler):
    """``POST /hub/api/cylc-batch/port``: a batch job's server reports its port."""

    def _reject(self, status, reason, name="?"):
        self.log.warning(
            "Port report rejected for %s from %s: %s", name, self.request.remote_ip, reason
        )
        raise web.HTTPError(status, reason)

    def _waiting_spawner(self, user, token):
        for spawner in user.spawners.values():
            own_token = getattr(spawner, "api_token", "")
            if not own_token or not hasattr(spawner, "accept_port"):
                continue
            if secrets.compare_digest(own_token.encode(), token.encode()):
                return spawner
        return None

    async def post(self):
        token = self.get_auth_token()
        user = self.current_user
        if not token or user is None or not hasattr(user, "spawners"):
            self._reject(403, "no server token")

        spawner = self._waiting_spawner(user, token)
        if spawner is None:
            self._reject(403, "the token belongs to no batch server of this user", user.name)

        try:
            port = parse_port(self.request.body)
        except ValueError as error:
            self._reject(400, str(error), spawner._log_name)

        if not spawner.accept_port(port):
            self._reject(409, "the server is not waiting for a port", spawner._log_name)
        self.log.info("%s reported port %d", spawner._log_name, port)
        self.set_status(204)
