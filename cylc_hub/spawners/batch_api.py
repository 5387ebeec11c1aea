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

from cylc_hub.spawners.form_fields import json_type_name, short_repr

PORT_PATH = r"/api/cylc-batch/port"
MAX_BODY_BYTES = 1024


def port_handlers():
    """Return the handler list for ``c.JupyterHub.extra_handlers``."""
    return [(PORT_PATH, BatchPortHandler)]


def parse_port(body):
    """Return the port in a request body, or raise ``ValueError`` saying why it is invalid."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f'body is longer than {MAX_BODY_BYTES} bytes; send only {{"port": N}}')
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'body is not JSON: {error}; send {{"port": N}}') from None
    if not isinstance(data, dict):
        raise ValueError(f'body must be exactly {{"port": N}}, not {json_type_name(data)}')
    if "port" not in data:
        raise ValueError('body must be exactly {"port": N}, and "port" is missing')
    if set(data) != {"port"}:
        extra = ", ".join(sorted(short_repr(key) for key in data if key != "port"))
        raise ValueError(f'body must be exactly {{"port": N}}; remove {extra}')
    port = data["port"]
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(
            f"port must be an integer from 1 to 65535, not {json_type_name(port)} ({short_repr(port)})"
        )
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
        if not token:
            self._reject(403, "missing token: send the server's API token in the Authorization header")
        user = self.current_user
        if user is None:
            self._reject(403, "invalid token: send the server's own API token")
        if not hasattr(user, "spawners"):
            self._reject(403, f"the token belongs to the service {user.name}, not to a server")

        spawner = self._waiting_spawner(user, token)
        if spawner is None:
            reason = "the token is not the API token of any batch server of this user"
            self._reject(403, reason, user.name)

        if len(self.request.body) > MAX_BODY_BYTES:
            reason = f'body is longer than {MAX_BODY_BYTES} bytes; send only {{"port": N}}'
            self._reject(413, reason, spawner._log_name)
        try:
            port = parse_port(self.request.body)
        except ValueError as error:
            self._reject(400, str(error), spawner._log_name)

        if not spawner.accept_port(port):
            reason = "the server is not waiting for a port: it is already running or not starting"
            self._reject(409, reason, spawner._log_name)
        self.log.info("%s reported port %d", spawner._log_name, port)
        self.set_status(204)
