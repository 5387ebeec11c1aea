"""A bounded request loop against cylc-access through the real hub's proxy, on loopback.

Each client thread sends a fixed number of requests with a hub API token.
The test records requests per second and latency percentiles, and asserts
only that every response was correct.
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from accessharness import SERVICE, create_hub_user, create_token, start_access_hub, token_client
from hubharness import stop_hub, wait_for

pytestmark = pytest.mark.hub

OWNERS = [f"o-{number:03d}" for number in range(200)]
CLIENTS = 8
REQUESTS_PER_CLIENT = 150

# bob may read the 200 o- owners' servers and alice's.
POLICY = """
[[rules]]
owners = ["o-*", "alice"]
viewers = ["bob"]
default = ["READ"]
"""


@pytest.fixture(scope="module")
def load_hub(password, tmp_path_factory):
    hub = start_access_hub(password, tmp_path_factory.mktemp("load-hub"), POLICY)
    try:
        alice = hub.login("alice")
        bob = hub.login("bob")
        hub.tokens = {
            "alice": create_token(hub, alice, "alice", "load test"),
            "bob": create_token(hub, bob, "bob", "load test"),
        }
        for name in OWNERS:
            response = create_hub_user(hub, hub.tokens["alice"], name)
            assert response.status_code == 201, response.text
        yield hub
    finally:
        stop_hub(hub)


def check_viewable(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == "bob"
    assert body["total"] == len(OWNERS) + 1
    assert [server["owner"] for server in body["servers"]] == sorted(OWNERS + ["alice"])
    assert {tuple(server["permissions"]) for server in body["servers"]} == {("read",)}


def check_permissions(response):
    assert response.status_code == 200, response.text
    assert response.json() == {"owner": "alice", "user": "bob", "permissions": ["read"]}


def run_client(url, token, params, check):
    """Send ``REQUESTS_PER_CLIENT`` GET requests; return the latencies in milliseconds."""
    client = token_client(token)
    latencies = []
    for _ in range(REQUESTS_PER_CLIENT):
        started = time.perf_counter()
        response = client.get(url, params=params, timeout=60)
        latencies.append(1000 * (time.perf_counter() - started))
        check(response)
    return latencies


def measure(url, token, params, check):
    """Run ``CLIENTS`` concurrent clients; return (requests, seconds, latencies)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(run_client, url, token, params, check) for _ in range(CLIENTS)]
        latencies = [latency for future in futures for latency in future.result()]
    return len(latencies), time.perf_counter() - started, latencies


def p95(latencies):
    return statistics.quantiles(latencies, n=20)[18]


def test_api_under_concurrent_load(load_hub, reliability):
    hub = load_hub
    endpoints = {
        "viewable": (f"{hub.url}{SERVICE}/api/viewable", hub.tokens["bob"], None, check_viewable),
        "permissions": (
            f"{hub.url}{SERVICE}/api/permissions/alice",
            hub.tokens["alice"],
            {"user": "bob"},
            check_permissions,
        ),
    }
    # The service lists the hub's users at most every 5 s: wait for a listing with every owner.
    viewable_url = endpoints["viewable"][0]
    wait_for(
        lambda: token_client(hub.tokens["bob"]).get(viewable_url, timeout=60).json()["total"]
        == len(OWNERS) + 1,
        30,
        interval=1,
        message="the service to list every owner",
    )
    for url, token, params, check in endpoints.values():
        check(token_client(token).get(url, params=params, timeout=60))

    figures = {}
    for name, (url, token, params, check) in endpoints.items():
        requests_sent, seconds, latencies = measure(url, token, params, check)
        figures[f"{name}_requests"] = requests_sent
        figures[f"{name}_requests_per_s"] = round(requests_sent / seconds, 1)
        figures[f"{name}_p50_ms"] = round(statistics.median(latencies), 1)
        figures[f"{name}_p95_ms"] = round(p95(latencies), 1)
    print("cylc-access under load:", figures)

    reliability.record(
        "load",
        f"Sent api/viewable (a list of {len(OWNERS) + 1} servers) and api/permissions through "
        f"the hub's proxy on loopback from {CLIENTS} concurrent clients with API tokens, "
        f"{REQUESTS_PER_CLIENT} requests each per endpoint.",
        "Every response was 200 with the right body.",
        clients=CLIENTS,
        **figures,
    )
