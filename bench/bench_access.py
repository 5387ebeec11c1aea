"""Benchmark cylc-access decisions and hub access objects at 10,000 users and 1,000 rules.

Run with ``make bench`` (or ``python bench/bench_access.py`` from the venv).
It prints figures and asserts nothing. The latencies are for the service's
in-process work behind ``api/viewable`` and ``api/permissions`` (deciding,
filtering and building the entries), without HTTP, OAuth or the hub, beside
a naive evaluator that matches every rule against every owner. Figures
depend on the machine; the script prints what it ran on.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from cylc_hub.policy import Policy, Rule, Selector
from cylc_hub.policy.decide import combine
from cylc_hub.services.access.reconcile import Owner
from cylc_hub.services.access.share_plan import SharePlanner, ViewerClasses

PERMISSION_CHOICES = (["READ"], ["READ", "CONTROL"], ["READ", "pause", "resume"], ["ALL"])


def make_users(count):
    """Return user names in 100 teams: ``team00-u0000`` and so on."""
    return [f"team{number % 100:02d}-u{number:05d}" for number in range(count)]


def make_site_policy(users, rule_count, seed=1):
    """Return a policy shaped like a large site's: team, ops and project rules."""
    randomness = random.Random(seed)
    groups = {f"team{team:02d}": [user for user in users if user.startswith(f"team{team:02d}-")] for team in range(100)}
    groups["ops"] = randomness.sample(users, 50)
    groups["admins"] = randomness.sample(users, 10)

    rules = []

    def add(owners, viewers, default, limit=None):
        rules.append(
            Rule(
                number=len(rules) + 1,
                line=len(rules) * 5 + 1,
                owners=tuple(Selector.parse(text) for text in owners),
                viewers=tuple(Selector.parse(text) for text in viewers),
                default=tuple(default),
                limit=tuple(limit if limit is not None else default),
                limit_given=limit is not None,
            )
        )

    add(["*"], ["group:ops"], ["READ", "CONTROL"])
    add(["*"], ["group:admins"], ["ALL"])
    for team in range(100):
        add([f"group:team{team:02d}"], [f"group:team{team:02d}"], ["READ"], ["READ", "CONTROL"])
    while len(rules) < rule_count:
        owner = randomness.choice(users)
        kind = randomness.random()
        if kind < 0.6:
            viewers = [randomness.choice(users)]
        elif kind < 0.9:
            viewers = [f"group:team{randomness.randrange(100):02d}"]
        else:
            viewers = [f"team{randomness.randrange(100):02d}-*"]
        default = randomness.choice(PERMISSION_CHOICES)
        add([owner], viewers, default)
    return Policy(rules, groups, source="<bench site policy>")


def everyone_policy():
    rule = Rule(1, 1, (Selector.parse("*"),), (Selector.parse("*"),), ("READ",), ("READ",), False)
    return Policy([rule], source="<everyone reads everyone>")


def naive_viewable(policy, viewer, owners):
    """Decide every owner by matching every rule: the evaluator the index replaces."""
    viewer_groups = policy.groups_of(viewer)
    result = {}
    for owner in owners:
        if owner == viewer:
            continue
        owner_groups = policy.groups_of(owner)
        rules = [rule for rule in policy.rules if rule.matches(owner, owner_groups, viewer, viewer_groups)]
        permissions = combine(rules, ()).result
        if "read" in permissions:
            result[owner] = permissions
    return result


def list_entries(viewable, owners):
    """Build the list entries as the service's handler does, without HTTP."""
    return [
        {"owner": name, "permissions": sorted(permissions), "ready": owners[name].ready}
        for name, permissions in sorted(viewable.items())
    ]


def percentiles(samples):
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(function, arguments):
    samples = []
    for argument in arguments:
        start = time.perf_counter()
        function(argument)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def count_access_objects(policy, users, slots=None):
    """Return (pairs with read, slot memberships + user shares, classes, seconds to plan).

    ``slots`` is the number of slots, None for one per class.
    """
    start = time.perf_counter()
    classes = ViewerClasses.build(policy, users, lambda user: ())
    ordered = classes.ordered()
    slot_of = {positions: slot for slot, positions in enumerate(ordered[:slots])}
    planner = SharePlanner(classes, slot_of)

    memberships = sum(len(classes.members[positions]) for positions in slot_of)
    pairs = 0
    for owner in users:
        plan = planner.plan(owner)
        memberships += len(plan.slots) + len(plan.users)
        readers = set(plan.users)
        for positions, slot in slot_of.items():
            if slot in plan.slots:
                pairs += len(classes.members[positions]) - (owner in classes.members[positions])
        pairs += len(readers)
    return pairs, memberships, len(classes.members), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000, help="number of users (default 10000)")
    parser.add_argument("--rules", type=int, default=1_000, help="number of rules (default 1000)")
    parser.add_argument("--requests", type=int, default=50, help="requests per indexed measurement")
    parser.add_argument("--naive-requests", type=int, default=5, help="requests per naive measurement")
    args = parser.parse_args()

    users = make_users(args.users)
    policy = make_site_policy(users, args.rules)
    owners = {name: Owner(name, True, True, None, None) for name in users}
    randomness = random.Random(2)
    viewers = [randomness.choice(users) for _ in range(args.requests)]
    pairs = [(randomness.choice(users), randomness.choice(users)) for _ in range(args.requests * 20)]

    print(f"cylc-access benchmark: {args.users} users, {len(policy.rules)} rules")
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print()

    print("latency, in-process (ms)                     p50        p95")
    p50, p95 = timed(lambda viewer: list_entries(policy.viewable(viewer, owners), owners), viewers)
    print(f"  api/viewable     indexed            {p50:10.1f} {p95:10.1f}")
    p50, p95 = timed(
        lambda viewer: list_entries(naive_viewable(policy, viewer, owners), owners),
        viewers[: args.naive_requests],
    )
    print(f"  api/viewable     naive (every rule) {p50:10.1f} {p95:10.1f}")
    p50, p95 = timed(lambda pair: policy.decide(pair[0], pair[1]).permissions, pairs)
    print(f"  api/permissions  decide            {p50:10.3f} {p95:10.3f}")
    p50, p95 = timed(
        lambda pair: naive_viewable(policy, pair[1], [pair[0]]),
        pairs[: args.naive_requests * 20],
    )
    print(f"  api/permissions  naive (every rule) {p50:10.3f} {p95:10.3f}")
    print()

    print(
        "hub access objects                       per-pair shares   "
        "slot memberships + user shares   classes   plan (s)"
    )
    cases = (
        ("everyone reads everyone", everyone_policy(), None),
        ("site policy, a slot per class", policy, None),
        ("site policy, 32 slots", policy, 32),
    )
    for label, chosen, slots in cases:
        pair_count, objects, class_count, seconds = count_access_objects(chosen, users, slots)
        print(f"  {label:<32} {pair_count:>16,} {objects:>32,} {class_count:>9} {seconds:>10.1f}")


if __name__ == "__main__":
    main()
