"""Keep the hub's shares equal to the policy's decisions, and know the hub's users."""

import asyncio
import logging
import time
from dataclasses import dataclass

from cylc_hub.services.access.hub_client import HubAPIError
from cylc_hub.services.access.share_plan import (
    GROUP_PREFIX,
    SharePlanner,
    ViewerClasses,
    owners_group,
    viewers_group,
)

# A listing no older than this serves page and API requests without asking the hub again.
USERS_MAX_AGE_SECONDS = 5


@dataclass(frozen=True)
class Owner:
    """One hub user as a possible owner of a Cylc UI server.

    ``groups`` are the user's JupyterHub groups, those that the service
    manages included.
    """

    name: str
    has_server: bool
    ready: bool
    pending: str | None
    last_activity: str | None
    groups: tuple[str, ...] = ()


def owner_from_model(model):
    """Build an ``Owner`` from a hub user model; only the default server counts."""
    groups = tuple(model.get("groups") or ())
    server = (model.get("servers") or {}).get("")
    if server is None:
        return Owner(model["name"], False, False, None, model.get("last_activity"), groups)
    return Owner(
        model["name"],
        True,
        bool(server.get("ready")),
        server.get("pending"),
        server.get("last_activity") or model.get("last_activity"),
        groups,
    )


class Reconciler:
    """Create and revoke hub shares so that they match the policy in force.

    A viewer needs access to an owner's server exactly when the decision for
    (owner, viewer) contains ``read``. The access comes from the slot groups
    of the viewer's class, or from a user share where an owner's grant sets
    the viewer apart (see ``share_plan``). ``slots`` is the number of slot
    group pairs and roles that ``jupyterhub_config.py`` defines. Shares and
    slot memberships that the plan does not contain are revoked, including
    those made by hand.
    """

    def __init__(
        self,
        hub,
        policy_store,
        *,
        grant_store=None,
        slots=0,
        concurrency=8,
        clock=time.monotonic,
        log=None,
    ):
        self.hub = hub
        self.slots = slots
        self._group_members = {}
        self.policy_store = policy_store
        self.grant_store = grant_store
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        self.owners = {}
        self.planner = None
        self.share_counts = {}
        self._planned_for = None
        self._users_fetched_at = None
        self._semaphore = asyncio.Semaphore(concurrency)
        self._known_shares = {}
        self._created_shares = set()
        self._sweep_lock = asyncio.Lock()
        self._groups_lock = asyncio.Lock()
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

    def hub_groups_of(self, user):
        """Return ``user``'s JupyterHub groups, leaving out those the service manages.

        Hub groups count only when the policy sets ``jupyterhub_groups = true``.
        """
        owner = self.owners.get(user)
        if owner is None or not self.policy_store.policy.jupyterhub_groups:
            return ()
        return tuple(group for group in owner.groups if not group.startswith(GROUP_PREFIX))

    def grants_of(self, owner):
        """Return ``owner``'s grants in force as ``(viewer_selector, permissions)`` pairs."""
        if self.grant_store is None:
            return []
        return self.grant_store.grants_of(owner)

    def decide(self, owner, viewer):
        """Return the decision for ``viewer`` on ``owner``'s server, with the owner's grants."""
        return self.policy_store.policy.decide(
            owner,
            viewer,
            owner_groups=self.hub_groups_of(owner),
            viewer_groups=self.hub_groups_of(viewer),
            grants=self.grants_of(owner),
        )

    def viewable(self, viewer):
        """Return ``{owner: permissions}`` for each known owner that ``viewer`` may read."""
        policy = self.policy_store.policy
        return policy.viewable(
            viewer, self.owners, groups_of=self.hub_groups_of, grants_of=self.grants_of
        )

    async def reconcile_now(self, owner):
        """Reconcile ``owner``'s shares at once, after a grant, a revoke or a server start.

        Returns True when the shares now match, False when the hub API failed
        (logged; the next sweep retries).
        """
        try:
            await self.refresh_users(max_age=1)
            await self.sync_groups(only_if_stale=True)
        except HubAPIError as error:
            self.log.error("Shares of %s not reconciled: %s", owner, error)
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
        """Reconcile the groups, then every owner with a server; one failing owner does not stop the rest."""
        async with self._sweep_lock:
            try:
                await self.refresh_users(max_age=0)
                await self.sync_groups()
            except HubAPIError as error:
                self.log.error("Sweep skipped: the hub API failed: %s", error)
                return

            self.expire_grants()
            owners = [owner for owner in self.owners.values() if owner.has_server]
            await asyncio.gather(*(self._reconcile_owner_guarded(owner.name) for owner in owners))
            self.log.info(
                "Sweep done: %d owners with a server, %d user shares and slot memberships, %d viewer classes",
                len(owners),
                sum(self.share_counts.get(owner.name, 0) for owner in owners),
                len(self.planner.classes.members) if self.planner else 0,
            )

    async def sync_groups(self, *, only_if_stale=False):
        """Make the slot groups equal the viewer classes and the owners each class may read.

        Members leave groups before any joins, so a slot that changes class
        never lets the new class into the old class's owners. With
        ``only_if_stale`` nothing happens when the groups were made for the
        same policy and the same users and groups.
        """
        policy = self.policy_store.policy
        key = (id(policy), tuple((name, self.hub_groups_of(name)) for name in sorted(self.owners)))
        if only_if_stale and self.planner is not None and key == self._planned_for:
            return

        async with self._groups_lock:
            classes = ViewerClasses.build(policy, self.owners, self.hub_groups_of)
            ordered = classes.ordered()
            if len(ordered) > self.slots:
                self.log.warning(
                    "%d viewer classes but %d slots: %d classes use user shares; "
                    "raise CYLC_HUB_ACCESS_SLOTS in jupyterhub_config.py",
                    len(ordered),
                    self.slots,
                    len(ordered) - self.slots,
                )
            slot_of = {positions: slot for slot, positions in enumerate(ordered[: self.slots])}
            planner = SharePlanner(classes, slot_of)

            wanted = {}
            for slot in range(self.slots):
                wanted[viewers_group(slot)] = set()
                wanted[owners_group(slot)] = set()
            for positions, slot in slot_of.items():
                wanted[viewers_group(slot)] = set(classes.members[positions])
            for name, owner in self.owners.items():
                if owner.has_server:
                    for slot in planner.plan(name, self.grants_of(name)).slots:
                        wanted[owners_group(slot)].add(name)

            current = {
                group["name"]: set(group.get("users") or ())
                for group in await self.hub.list_groups()
                if group["name"] in wanted
            }
            missing = sorted(set(wanted) - set(current))
            if missing:
                self.log.error(
                    "Slot groups %s are missing from the hub: define them with "
                    "c.JupyterHub.load_groups in jupyterhub_config.py",
                    ", ".join(missing[:4]),
                )

            for name in sorted(current):
                leaving = current[name] - wanted[name]
                if leaving:
                    await self.hub.remove_group_members(name, leaving)
                    current[name] -= leaving
                    self.log.info("Group %s: removed %s", name, ", ".join(sorted(leaving)))
            for name in sorted(current):
                joining = wanted[name] - current[name]
                if joining:
                    await self.hub.add_group_members(name, joining)
                    current[name] |= joining
                    self.log.info("Group %s: added %s", name, ", ".join(sorted(joining)))

            self._group_members = current
            self.planner = planner
            self._planned_for = key

    async def ensure_viewer(self, viewer):
        """Reconcile the owners whose shares do not yet cover ``viewer``, before a page links to them."""
        owners = [
            owner
            for owner in self.viewable(viewer)
            if self.owners[owner].has_server and not self.covers(owner, viewer)
        ]
        if owners:
            await asyncio.gather(*(self.reconcile_now(owner) for owner in owners))

    def covers(self, owner, viewer):
        """Return whether the shares and slot groups last seen let ``viewer`` into ``owner``'s server."""
        _, users = self._known_shares.get(owner, (set(), set()))
        if viewer in users:
            return True
        return any(
            viewer in self._group_members.get(viewers_group(slot), ())
            and owner in self._group_members.get(owners_group(slot), ())
            for slot in range(self.slots)
        )

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
        """Make the shares of ``owner``'s default server equal the planned ones."""
        if self.planner is None:
            await self.sync_groups()
        plan = self.planner.plan(owner, self.grants_of(owner))
        await self._set_owner_slots(owner, plan.slots)

        current_groups, current_users = set(), set()
        for share in await self.hub.list_shares(owner):
            if (share.get("server") or {}).get("name", "") != "":
                continue
            if share.get("group"):
                current_groups.add(share["group"]["name"])
            elif share.get("user"):
                current_users.add(share["user"]["name"])
        self._known_shares[owner] = (set(current_groups), set(current_users))

        for viewer in sorted(plan.users - current_users):
            await self._grant(owner, viewer)
        # The service never shares with a group, so every group share was made outside the policy.
        for group in sorted(current_groups):
            await self.hub.revoke_group_share(owner, group)
            self._known_shares[owner][0].discard(group)
            self.log.warning(
                "Share revoked: %s's server from group %s (made outside the policy)", owner, group
            )
        for viewer in sorted(current_users - plan.users):
            await self._revoke(owner, viewer)
        self.share_counts[owner] = plan.count

    async def _set_owner_slots(self, owner, slots):
        """Put ``owner`` in the owners group of exactly ``slots``, leaving before joining."""
        leaving, joining = [], []
        for slot in range(self.slots):
            name = owners_group(slot)
            members = self._group_members.get(name)
            if members is None:
                continue
            if slot in slots and owner not in members:
                joining.append(name)
            elif slot not in slots and owner in members:
                leaving.append(name)
        for name in leaving:
            await self.hub.remove_group_members(name, [owner])
            self._group_members[name].discard(owner)
            self.log.info("Group %s: removed %s", name, owner)
        for name in joining:
            await self.hub.add_group_members(name, [owner])
            self._group_members[name].add(owner)
            self.log.info("Group %s: added %s", name, owner)

    async def _grant(self, owner, viewer):
        await self.hub.grant_share(owner, viewer)
        self._known_shares[owner][1].add(viewer)
        self._created_shares.add((owner, viewer))
        self.log.info("Share granted: %s's server to %s (the policy allows read)", owner, viewer)

    async def _revoke(self, owner, viewer):
        await self.hub.revoke_share(owner, viewer)
        self._known_shares[owner][1].discard(viewer)
        if (owner, viewer) in self._created_shares:
            self._created_shares.discard((owner, viewer))
            origin = "created by cylc-access"
        else:
            origin = "not created by cylc-access since it started: made outside the policy or earlier"
        if "read" in self.decide(owner, viewer).permissions:
            reason = "the viewer's slot group gives access"
        else:
            reason = "the policy does not allow read"
        self.log.warning(
            "Share revoked: %s's server from %s (%s; share %s)", owner, viewer, reason, origin
        )
