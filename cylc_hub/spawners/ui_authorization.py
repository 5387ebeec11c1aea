"""Hand the site policy's decisions to the Cylc UI server as its own configuration.

cylc-uiserver 1.7 reads ``CylcUIServer.site_authorization`` from
``jupyter_server_config.py`` files on ``JUPYTER_CONFIG_PATH``; a directory the
spawner puts first on that path wins over the owner's
``~/.cylc/uiserver/jupyter_config.py``. The same dicts given as command-line
arguments do not work: the Cylc extension then fails to load while the hub
still reports the server ready.

Each viewer gets one entry whose ``default`` and ``limit`` are both the
decided permissions, so Cylc's own order-dependent merging of site entries
never comes into play.
"""

import json
import secrets
from typing import Literal
from urllib.parse import quote
import logging
import os
import pwd
import stat

from jupyterhub.utils import url_path_join
from pydantic import TypeAdapter
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from cylc_hub.policy import ALL_PERMISSIONS, PolicyError, load_policy

CONFIG_FILE_NAME = "jupyter_server_config.py"

# Cylc's site_authorization: owner -> viewer -> {"default": [...], "limit": [...]}.
SITE_AUTHORIZATION = TypeAdapter(
    dict[str, dict[str, dict[Literal["default", "limit"], list[str]]]]
)

# Seconds a UI server trusts a visitor's hub login before asking the hub again
# (JupyterHub's default is 300).
HUB_LOGIN_CACHE_SECONDS = 30

log = logging.getLogger(__name__)


def site_authorization(policy, owner, viewers):
    """Return Cylc's ``site_authorization`` dict for ``owner``'s server.

    Only viewers with at least one permission appear: Cylc treats an empty
    list as a configuration error, and a viewer without an entry gets nothing.
    """
    entries = {}
    for viewer in sorted(set(viewers) - {owner}):
        permissions = sorted(policy.decide(owner, viewer).permissions)
        if permissions:
            entries[viewer] = {"default": permissions, "limit": permissions}
    return {owner: entries} if entries else {}


def render_config(authorization):
    """Return the text of a ``jupyter_server_config.py`` that sets the authorization.

    JSON of strings, lists and dicts is also a valid Python literal, so no user
    or group name can break out of the literal. The file also shortens the
    server's cache of hub logins, so a viewer whose hub share was revoked
    loses access within that time. It gives jupyter_server a token of its
    own, so the server does not print a generated one in the hub's log.
    """
    return (
        "# Written by cylc-hub when this server started; changes are overwritten.\n"
        f"c.CylcUIServer.site_authorization = {json.dumps(authorization, indent=1)}\n"
        "c.CylcUIServer.user_authorization = {}\n"
        f"c.HubOAuth.cache_max_age = {HUB_LOGIN_CACHE_SECONDS}\n"
        f"c.IdentityProvider.token = {json.dumps(secrets.token_hex(32))}\n"
    )


class UIAuthorizationError(Exception):
    """The UI authorization cannot be delivered where the owner's server can read it."""


def check_searchable(directory, owner):
    """Raise ``UIAuthorizationError`` unless ``owner`` can search every directory above ``directory``.

    A UI server that cannot read its authorization file starts without the
    site's decisions: viewers pass the hub and then get no permissions.
    """
    account = pwd.getpwnam(owner)
    groups = set(os.getgrouplist(owner, account.pw_gid))
    parent = os.path.dirname(os.path.abspath(directory))
    while True:
        status = os.stat(parent)
        if status.st_uid == account.pw_uid:
            searchable = status.st_mode & stat.S_IXUSR
        elif status.st_gid in groups:
            searchable = status.st_mode & stat.S_IXGRP
        else:
            searchable = status.st_mode & stat.S_IXOTH
        if not searchable:
            raise UIAuthorizationError(
                f"The UI authorization directory {directory} cannot be reached by user {owner}: "
                f"{parent} is not searchable by them. Ask the site administrator to make every "
                f"directory above ui_authorization_root searchable (chmod o+x {parent})."
            )
        if parent == os.path.dirname(parent):
            return
        parent = os.path.dirname(parent)


def write_config(directory, owner, text):
    """Write the config file into ``directory``, readable by ``owner`` and root only.

    When the hub runs as root the directory belongs to root with the owner's
    group, so the owner can read but not change the file, and other users cannot
    learn who may view this owner's server.
    """
    os.makedirs(directory, mode=0o750, exist_ok=True)
    if os.geteuid() == 0:
        check_searchable(directory, owner)
    path = os.path.join(directory, CONFIG_FILE_NAME)
    temporary = path + ".tmp"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as file:
        file.write(text)

    if os.geteuid() == 0:
        gid = pwd.getpwnam(owner).pw_gid
        os.chown(directory, 0, gid)
        os.chown(temporary, 0, gid)
    os.chmod(directory, 0o750)
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)
    return path


async def fetch_site_authorization(service_url, owner, token, *, log, http_client=None):
    """Ask the cylc-access service for ``owner``'s authorization, owners' grants included.

    ``token`` is the starting server's own hub token, sent in a header. Returns
    the ``site_authorization`` dict, or None when the request fails or the
    response does not have the expected shape.
    """
    url = url_path_join(service_url, "api/authorization", quote(owner, safe=""))
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=30)
    try:
        response = await (http_client or AsyncHTTPClient()).fetch(request)
        authorization = json.loads(response.body)["site_authorization"]
        return _checked_authorization(authorization, owner)
    except HTTPClientError as error:
        log.warning("cylc-access gave %s for %s's authorization", error.code, owner)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("cylc-access could not give %s's authorization: %s", owner, error)
    return None


def _checked_authorization(authorization, owner):
    """Return ``authorization`` if it has Cylc's shape for this owner only; raise ValueError otherwise."""
    checked = SITE_AUTHORIZATION.validate_python(authorization)
    if set(checked) - {owner}:
        raise ValueError(f"entries for owners other than {owner!r}")
    for entries in checked.values():
        for permissions in entries.values():
            unknown = set(permissions.get("default", [])) | set(permissions.get("limit", []))
            unknown -= ALL_PERMISSIONS
            if unknown:
                raise ValueError(f"unknown permissions {sorted(unknown)}")
    return checked


def load_decisions(policy_file, owner):
    """Load the policy for a spawn; an invalid or missing file grants nobody (fail closed)."""
    if not policy_file:
        return None
    try:
        return load_policy(policy_file)
    except (PolicyError, RecursionError, MemoryError) as error:
        log.error(
            "Policy file %s rejected while starting %s's server; nobody else gets "
            "permissions in it until it restarts with a valid policy:\n%s",
            policy_file,
            owner,
            error,
        )
        return None

