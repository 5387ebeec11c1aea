"""Keep the hub's shares equal to the policy's decisions, and know the hub's users."""

import asyncio
import logging
import time
from dataclasses import dataclass

from cylc_hub.services.access.hub_client import HubAPIError

# A listing no older than this serves page and API requests without asking the hub again.
USERS_MAX_AGE_SECONDS = 5


@dataclass(frozen=True)
class Owner:
    """One hub user as a possible owner of a Cylc UI server."""

    name: str
    has_server: bool
    ready: bool
    pending: str | None
    last_activity: str | None


def owner_from_model(model):
    """Build an ``Owner`` from a hub user model; only the default server counts."""
    server = (model.get("servers") or {}).get("")
    if server is None:
        return Owner(model["name"], False, False, None, model.get("last_activity"))
    return Owner(
        model["name"],
        True,
        bool(server.get("ready")),
        server.get("pending"),
        server.get("last_activity") or model.get("last_activity"),
    )


class Reconciler:
    """Create and revoke hub shares so that they match the policy in force.

    A viewer needs a share of an owner's server exactly when the decision for
    (owner, viewer) contains ``read``. Shares are per user for now: their
    number grows with the pairs the policy allows.
    """

    def __init__(
        self,
        hub,
        policy_store,
        *,
        grant_store=None,
        concurrency=8,
        clock=time.monotonic,
        log=None,
    ):
        self.hub = hub
        self.policy_store = policy_store
        self.grant_store = grant_store
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        self.owners = {}
        self._users_fetched_at = None
        self._semaphore = asyncio.Semaphore(concurrency)
        self._known_shares = {}
        self._created_shares = set()
        self._sweep_lock = asyncio.Lock()
        self._owner_locks = {}

    async def refresh_users(self, *, max_age=USERS_MAX_AGE_SECONDS):
        """Fetch the hub's users unless the last listing is younger than ``max_age`` seconds."""
        now = self.clock()
        if self._users_fetched_at is not None and now - self._users_fetched_at < max_age:
            return self.owners

        models = await self.hub.list_users()
        before = self.owners
        self.owners = {model["name"]: owner_from_model(model) for model in models}
        self._users_fetched_at = now

        # An owner whose server appeared since the last listing gets its shares at once.
        if before:
            for name, owner in self.owners.items():
                previous = before.get(name)
                if owner.has_server and (previous is None or not previous.has_server):
                    self.log.info("Server of %s appeared; reconciling its shares", name)
                    asyncio.ensure_future(self.reconcile_now(name))
        return self.owners

    def grants_of(self, owner):
        """Return ``owner``'s grants in force as ``(viewer_selector, permissions)`` pairs."""
        if self.grant_store is None:
            return []
        return self.grant_store.grants_of(owner)

    def decide(self, owner, viewer):
        """Return the decision for ``viewer`` on ``owner``'s server, with the owner's grants."""
        return self.policy_store.policy.decide(owner, viewer, grants=self.grants_of(owner))

    def viewable(self, viewer):
        """Return ``{owner: permissions}`` for each known owner that ``viewer`` may read."""
        policy = self.policy_store.policy
        return policy.viewable(viewer, self.owners, grants_of=self.grants_of)

    async def reconcile_now(self, owner):
        """Reconcile ``owner``'s shares at once, after a grant, a revoke or a server start.

        Returns True when the shares now match, False when the hub API failed
        (logged; the next sweep retries).
        """
        try:
            await self.refresh_users(max_age=1)
        except HubAPIError as error:
            self.log.error("Shares of %s not reconciled: listing users failed: %s", owner, error)
            return False
        if owner not in self.owners or not self.owners[owner].has_server:
            return True
        return await self._reconcile_owner_guarded(owner)

    def expire_grants(self):
        """Remove expired grants, log each one, and return the owners whose shares may change."""
        if self.grant_store is None:
            return set()
        owners = set()
        for record in self.grant_store.remove_expired():
            self.log.info(
                "Grant expired and revoked: id=%s owner=%s viewer=%s permissions=%s expires_at=%s",
                record.id,
                record.owner,
                record.viewer,
                ",".join(record.permissions),
                record.expires_at.isoformat(),
            )
            owners.add(record.owner)
        return owners

    async def expire_and_reconcile(self):
        """Remove expired grants and reconcile the shares of their owners."""
        owners = self.expire_grants()
        await asyncio.gather(*(self.reconcile_now(owner) for owner in sorted(owners)))

    async def sweep(self):
        """Reconcile the shares of every owner with a server; one failing owner does not stop the rest."""
        async with self._sweep_lock:
            try:
                await self.refresh_users(max_age=0)
            except HubAPIError as error:
                self.log.error("Sweep skipped: listing the hub's users failed: %s", error)
                return

            self.expire_grants()
            owners = [owner for owner in self.owners.values() if owner.has_server]
            await asyncio.gather(*(self._reconcile_owner_guarded(owner.name) for owner in owners))

    async def ensure_viewer(self, viewer):
        """Create any missing share that ``viewer`` needs, before a page links to the servers."""
        for owner, permissions in self.viewable(viewer).items():
            if not self.owners[owner].has_server:
                continue
            if viewer in self._known_shares.get(owner, set()):
                continue
            try:
                await self._grant(owner, viewer)
            except HubAPIError as error:
                self.log.error("Share %s -> %s not created: %s", owner, viewer, error)

    async def _reconcile_owner_guarded(self, owner):
        # One owner at a time per owner, so an immediate reconcile and a sweep do not race.
        lock = self._owner_locks.setdefault(owner, asyncio.Lock())
        async with lock, self._semaphore:
            try:
                await self.reconcile_owner(owner)
            except HubAPIError as error:
                self.log.error("Shares of %s not reconciled: %s", owner, error)
                return False
            except Exception:
                self.log.exception("Shares of %s not reconciled", owner)
                return False
        return True

    async def reconcile_owner(self, owner):
        """Make the shares of ``owner``'s default server equal the viewers the policy allows."""
        wanted = {
            viewer
            for viewer in self.owners
            if viewer != owner and "read" in self.decide(owner, viewer).permissions
        }

        shares = await self.hub.list_shares(owner)
        current = {
            share["user"]["name"]
            for share in shares
            if share.get("user") and share.get("server", {}).get("name", "") == ""
        }
        self._known_shares[owner] = set(current)

        for viewer in sorted(wanted - current):
            await self._grant(owner, viewer)
        for viewer in sorted(current - wanted):
            await self._revoke(owner, viewer)

    async def _grant(self, owner, viewer):
        await self.hub.grant_share(owner, viewer)
        self._known_shares.setdefault(owner, set()).add(viewer)
        self._created_shares.add((owner, viewer))
        self.log.info("Share granted: %s's server to %s (the policy allows read)", owner, viewer)

    async def _revoke(self, owner, viewer):
        await self.hub.revoke_share(owner, viewer)
        self._known_shares.get(owner, set()).discard(viewer)
        if (owner, viewer) in self._created_shares:
            self._created_shares.discard((owner, viewer))
            origin = "created by cylc-access"
        else:
            origin = "not created by cylc-access since it started: made outside the policy or earlier"
        self.log.warning(
            "Share revoked: %s's server from %s (the policy does not allow read; share %s)",
            owner,
            viewer,
            origin,
        )
