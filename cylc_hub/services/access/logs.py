"""Request logging for cylc-access that never writes a query string.

Query strings can carry OAuth codes and states, so access lines and HTTP
error lines name the path only.
"""

import logging

from tornado import web

LIBRARY_LOGGERS = ("tornado", "jupyterhub")


def route_library_logs(service_log):
    """Send tornado's and JupyterHub's records through the service's handlers and format."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = list(service_log.handlers)
        logger.setLevel(service_log.level)
        logger.propagate = False


def log_request(handler):
    """Log one finished request with its status, method, path, time and user."""
    status = handler.get_status()
    if status < 400:
        level = logging.DEBUG if handler.request.path.endswith("/api/viewable") else logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR

    # Read what authentication already found; never authenticate just to log.
    model = getattr(handler, "_current_user", None)
    user = model.get("name", "-") if isinstance(model, dict) else "-"
    handler.settings["service_log"].log(
        level,
        "%d %s %s (%s) %.1f ms",
        status,
        handler.request.method,
        handler.request.path[:300],
        user,
        1000 * handler.request.request_time(),
    )


class QueryFreeErrors:
    """Handler mixin: log HTTP errors with the path only, and other errors once with a traceback."""

    def log_exception(self, typ, value, tb):
        log = self.settings["service_log"]
        if isinstance(value, web.HTTPError):
            if value.log_message:
                log.warning(
                    "%d %s %s: %s",
                    value.status_code,
                    self.request.method,
                    self.request.path[:300],
                    value.log_message % value.args if value.args else value.log_message,
                )
            return
        log.error(
            "Uncaught error on %s %s", self.request.method, self.request.path[:300],
            exc_info=(typ, value, tb),
        )
