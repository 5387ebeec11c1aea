"""Group shares: the planned shares let in exactly the viewers the decisions allow, and few."""

import asyncio
import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cylc_hub.policy import PolicyError, parse_policy
from cylc_hub.services.access.policy_store import PolicyStore
from cylc_hub.services.access.reconcile import Reconciler
from cylc_hub.services.access.share_plan import SharePlanner, ViewerClasses
from test_access_service import FakeHub

USERS = ["ann", "ben", "cat", "dan", "op-eve", "op-fay"]
SELECTORS = ["*", "ann", "ben", "cat", "op-*", "group:ops", "group:dev"]
PERMISSIONS = ["READ", "CONTROL", "ALL", "!read", "pause", "!CONTROL"]


def policy_text(rules):
    lines = ['[groups]\nops = ["cat", "op-eve"]\ndev = ["ann", "ben", "op-fay"]\n']
    for owners, viewers, default, limit in rules:
        lines.append(
            f"[[rules]]\nowners = {owners!r}\nviewers = {viewers!r}\n"
            f"default = {default!r}\nlimit = {limit!r}\n".replace("'", '"')
        )
    return "\n".join(lines)


rule_strategy = st.tuples(
    st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(PERMISSIONS), max_size=2, unique=True),
    st.lists(st.sampled_from(PERMISSIONS), max_size=3, unique=True),
)
grant_strategy = st.dictionaries(
    st.sampled_from(["ann", "ben", "cat", "op-eve", "group:ops", "group:dev"]),
    st.lists(st.sampled_from(PERMISSIONS), min_size=1, max_size=2, unique=True),
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_strategy, max_size=4),
    grants=st.dictionaries(st.sampled_from(USERS), grant_strategy, max_size=3),
)
def test_plan_matches_decisions(rules, grants):
    # A limit narrower than its default is a validation error, not a case to plan.
    rules = [(owners, viewers, default, limit + default) for owners, viewers, default, limit in rules]
    try:
        policy = parse_policy(policy_text(rules), source="policy.toml")
    except PolicyError:
        assume(False)
    classes = ViewerClasses.build(policy, USERS, lambda user: ())
    # One class has no slot, so the user-share fallback is planned too.
    ordered = classes.ordered()
    slot_of = {positions: slot for slot, positions in enumerate(ordered[: max(len(ordered) - 1, 0)])}
    planner = SharePlanner(classes, slot_of)
    members_of_slot = {slot: classes.members[positions] for positions, slot in slot_of.items()}

    for owner in USERS:
        owner_grants = list(grants.get(owner, {}).items())
        plan = planner.plan(owner, owner_grants)
        let_in = set(plan.users)
        for slot in plan.slots:
            let_in |= members_of_slot[slot]
        let_in.discard(owner)

        expected = {
            viewer
            for viewer in USERS
            if viewer != owner
            and "read" in policy.decide(owner, viewer, grants=owner_grants).permissions
        }
        assert let_in == expected, (owner, plan)


def test_everyone_reads_everyone_one_share_per_owner():
    users = [f"user{number:04d}" for number in range(2000)]
    policy = parse_policy('[[rules]]\nowners = ["*"]\nviewers = ["*"]\ndefault = ["READ"]\n')

    classes = ViewerClasses.build(policy, users, lambda user: ())
    planner = SharePlanner(classes, {positions: 0 for positions in classes.members})
    plans = [planner.plan(owner) for owner in users]

    assert len(classes.members) == 1
    assert sum(len(plan.users) for plan in plans) == 0
    assert sum(len(plan.slots) for plan in plans) == len(users)


def test_grant_taking_read_splits_class():
    users = ["ann", "ben", "cat"]
    policy = parse_policy('[[rules]]\nowners = ["*"]\nviewers = ["*"]\ndefault = ["READ"]\nlimit = ["READ", "CONTROL"]\n')
    classes = ViewerClasses.build(policy, users, lambda user: ())
    planner = SharePlanner(classes, {positions: 0 for positions in classes.members})

    plan = planner.plan("ann", [("ben", ["pause"])])

    assert plan.slots == frozenset()
    assert plan.users == frozenset({"cat"})


def test_hub_groups_count_as_group_source(tmp_path):
    path = tmp_path / "policy.toml"
    # jupyterhub_groups lets the policy name a hub group that [groups] does not declare.
    path.write_text('[settings]\njupyterhub_groups = true\n[[rules]]\nowners = ["ann"]\nviewers = ["group:forecasters"]\ndefault = ["READ"]\n')
    store = PolicyStore(path)
    store.reload_if_changed()
    hub = FakeHub({"ann": True, "ben": False, "cat": False})
    hub.groups["forecasters"] = {"ben"}
    reconciler = Reconciler(hub, store, slots=hub.slots)

    asyncio.run(reconciler.sweep())

    assert hub.viewers_of("ann") == {"ben"}
    assert "ann" in reconciler.viewable("ben")
    assert reconciler.viewable("cat") == {}
    assert reconciler.decide("ann", "ben").permissions == frozenset({"read"})


def test_hub_groups_ignored_unless_enabled(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[settings]\nos_groups = true\n[[rules]]\nowners = ["ann"]\nviewers = ["group:forecasters"]\ndefault = ["READ"]\n')
    store = PolicyStore(path)
    store.reload_if_changed()
    hub = FakeHub({"ann": True, "ben": False})
    hub.groups["forecasters"] = {"ben"}
    reconciler = Reconciler(hub, store, slots=hub.slots)

    asyncio.run(reconciler.sweep())

    assert hub.viewers_of("ann") == set()
    assert reconciler.viewable("ben") == {}


async def test_classes_beyond_slots_use_user_shares(tmp_path, caplog):
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rules]]\nowners = ["*"]\nviewers = ["ann"]\ndefault = ["READ"]\n'
        '[[rules]]\nowners = ["*"]\nviewers = ["ben"]\ndefault = ["READ"]\n'
    )
    store = PolicyStore(path)
    store.reload_if_changed()
    hub = FakeHub({"ann": True, "ben": True, "cat": True}, slots=1)
    reconciler = Reconciler(hub, store, slots=1)

    await reconciler.sweep()

    assert hub.viewers_of("cat") == {"ann", "ben"}
    assert hub.viewers_of("ann") == {"ben"}
    assert sum(map(len, hub.shares.values())) == 2
    assert "2 viewer classes but 1 slots" in caplog.text


async def test_slot_groups_change_with_policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[[rules]]\nowners = ["ann"]\nviewers = ["*"]\ndefault = ["READ"]\n')
    store = PolicyStore(path)
    store.reload_if_changed()
    hub = FakeHub({"ann": True, "ben": True, "cat": True})
    reconciler = Reconciler(hub, store, slots=hub.slots)
    await reconciler.sweep()
    assert hub.viewers_of("ann") == {"ben", "cat"}
    assert hub.shares == {}

    path.write_text('[[rules]]\nowners = ["ben"]\nviewers = ["cat"]\ndefault = ["READ"]\n')
    os.utime(path, ns=(1, 1))
    assert store.reload_if_changed()
    await reconciler.sweep()

    assert hub.viewers_of("ann") == set()
    assert hub.viewers_of("ben") == {"cat"}
