"""Hostile requests to the spawn API and to the batch port callback, through the real hub.

eve is the attacker and oscar the owner of the servers she aims at. The
REST tests run on a cylc-local hub, and the port callback test on a
cylc-slurm hub with a one-node Slurm cluster. Every request must get a
clear 4xx, change nothing, and leave the hub and the running server working.
"""

import json
import secrets

import pytest
import requests

from hubharness import ROOT, USERS, start_hub, stop_hub, wait_for
from loadharness import create_users, server_token_of, xsrf_headers
from slurmharness import remove_slurm, start_slurm

pytestmark = pytest.mark.hub

ATTACKER = "eve"
OWNER = "oscar"
ABUSE_CONFIG = ROOT / "tests" / "configs" / "abuse_config.py"
ACCEPTED = {"workflow": "runs/one", "log_level": "DEBUG"}
# Bodies of more than this many bytes must not come back in a response.
MAX_RESPONSE_BYTES = 5000


@pytest.fixture(scope="module")
def abuse_users(password):
    create_users([ATTACKER, OWNER], password)
    return ",".join([*USERS, ATTACKER, OWNER])


@pytest.fixture(scope="module")
def rest_hub(password, abuse_users):
    hub = start_hub(password, extra_env={"CYLC_HUB_USERS": abuse_users})
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def slurm():
    cluster = start_slurm()
    yield cluster
    remove_slurm(cluster)


@pytest.fixture(scope="module")
def service_token():
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def port_hub(password, abuse_users, slurm, service_token):
    extra_env = {
        "CYLC_HUB_USERS": abuse_users,
        "SLURM_CONF": str(slurm.conf),
        "CYLC_HUB_TEST_SERVICE_TOKEN": service_token,
    }
    hub = start_hub(password, config=ABUSE_CONFIG, extra_env=extra_env)
    yield hub
    stop_hub(hub)


def nested(depth):
    """Return JSON text of ``depth`` nested one-key objects around an empty string."""
    return '{"a": ' * depth + '""' + "}" * depth


def nested_lists(depth):
    return "[" * depth + "]" * depth


def depth_cases():
    """Return nesting cases around the depths at which the hub's JSON parser and encoder give up.

    Both count against Python's recursion limit (1000) together with the
    hub's own stack, so the exact depth moves with the code. Every tenth
    depth from 900 to 1,000 is tried.
    """
    cases = []
    for depth in (200, 500, *range(900, 1001, 10)):
        cases.append((f"{depth} levels of lists", '{"user_options": {"log_level": ' + nested_lists(depth) + "}}", ""))
        cases.append((f"{depth} levels at the top", nested(depth), ""))
    return cases


def stored_options(hub, session, user):
    """Return the options the hub stored for ``user``'s default server, which is not running."""
    response = hub.api(session, "GET", f"/users/{user}/server")
    assert response.status_code == 200, response.text
    model = response.json()
    assert not model["ready"], model
    assert model["pending"] is None, model
    return model["user_options"]


def start_and_stop(hub, session, user, options):
    """Start ``user``'s server with ``options``, wait until ready, and stop it again."""
    response = hub.api(session, "POST", f"/users/{user}/server", json={"user_options": options})
    assert response.status_code in (201, 202), response.text
    model = hub.wait_ready(session, user)
    hub.stop_server(session, user)
    return model


def post_raw(hub, session, user, body, content_type="application/json", token=None):
    """POST ``body`` (bytes) to ``user``'s server URL with the session's cookie, or with ``token``."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"token {token}"
        return requests.post(f"{hub.url}/hub/api/users/{user}/server", data=body, headers=headers, timeout=120)
    headers.update(xsrf_headers(session))
    return session.post(f"{hub.url}/hub/api/users/{user}/server", data=body, headers=headers, timeout=120)


def message_of(response):
    try:
        return str(response.json().get("message", ""))
    except ValueError:
        return ""


REST_CASES = [
    # (case, request body, words the message must contain)
    ("10 MB text", json.dumps({"user_options": {"workflow": "w" * 10_000_000}}), "Workflow to open first"),
    ("100,000 keys", json.dumps({"user_options": {f"k{n}": 1 for n in range(100_000)}}), "more"),
    ("reserved bytes key", json.dumps({"user_options": {"__jupyterhub_bytes__": True, "data": "aGk="}}), "__jupyterhub_bytes__"),
    ("reserved key in a value", json.dumps({"user_options": {"workflow": {"__jupyterhub_bytes__": True, "data": "aGk="}}}), "Workflow"),
    ("reserved key at the top", json.dumps({"__jupyterhub_bytes__": True, "data": "aGk="}), "__jupyterhub_bytes__"),
    ("empty list body", "[]", "object"),
    ("zero body", "0", "object"),
    ("false body", " false ", "object"),
    ("empty string body", '""', "object"),
    ("null body", "null", "object"),
    ("list body", "[1]", "object"),
    ("string body", '"workflow"', "object"),
    ("number body", "42", "object"),
    ("boolean body", "true", "object"),
    ("list options", json.dumps({"user_options": [1]}), "object"),
    ("string options", json.dumps({"user_options": "demo"}), "object"),
    ("invalid JSON", '{"user_options": {', "JSON"),
    *depth_cases(),
]


def test_rest_spawn_abuse_rejected(rest_hub, reliability):
    hub = rest_hub
    eve = hub.login(ATTACKER)
    start_and_stop(hub, eve, ATTACKER, ACCEPTED)
    assert stored_options(hub, eve, ATTACKER) == ACCEPTED

    sizes = []
    for case, body, words in REST_CASES:
        response = post_raw(hub, eve, ATTACKER, body.encode())

        assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:500])
        message = message_of(response)
        assert message, (case, response.text[:500])
        assert words in message, (case, message)
        assert len(response.content) < MAX_RESPONSE_BYTES, (case, len(response.content))
        assert stored_options(hub, eve, ATTACKER) == ACCEPTED, case
        sizes.append(len(body))

    assert requests.get(f"{hub.url}/hub/api/", timeout=30).ok
    model = start_and_stop(hub, eve, ATTACKER, None)
    assert model["user_options"] == ACCEPTED

    reliability.record(
        "hostile input",
        "A user sent REST spawn requests for her own server with 10 MB and 100,000-key options, "
        "1,000-level nesting, JupyterHub's reserved __jupyterhub_ keys and non-object bodies.",
        "Each got a 4xx with a short message, the last accepted options stayed stored, and her "
        "next spawn without options started with them.",
        requests=len(REST_CASES),
        largest_body_bytes=max(sizes),
    )


def test_rest_spawn_other_user_and_content_type(rest_hub, reliability):
    hub = rest_hub
    oscar = hub.login(OWNER)
    eve = hub.login(ATTACKER)
    start_and_stop(hub, oscar, OWNER, ACCEPTED)
    eve_token = hub.api(eve, "POST", f"/users/{ATTACKER}/tokens", json={}).json()["token"]
    hostile = json.dumps({"user_options": {"log_level": "INFO"}}).encode()

    cases = [
        ("eve's cookie on oscar's server", post_raw(hub, eve, OWNER, hostile)),
        ("eve's token on oscar's server", post_raw(hub, None, OWNER, hostile, token=eve_token)),
        ("text/plain with a cookie", post_raw(hub, eve, ATTACKER, hostile, "text/plain")),
        ("form body with a cookie", post_raw(hub, eve, ATTACKER, b"log_level=INFO", "application/x-www-form-urlencoded")),
        ("form body with a token", post_raw(hub, None, ATTACKER, b"log_level=INFO", "application/x-www-form-urlencoded", eve_token)),
    ]
    for case, response in cases:
        assert response.status_code in (400, 403, 404), (case, response.status_code, response.text[:500])
        assert message_of(response), (case, response.text[:500])

    assert stored_options(hub, oscar, OWNER) == ACCEPTED
    assert hub.server_model(eve, ATTACKER) is None or not hub.server_model(eve, ATTACKER)["ready"]
    assert requests.get(f"{hub.url}/hub/api/", timeout=30).ok

    reliability.record(
        "hostile input",
        "A user sent spawn requests for another user's server with her cookie and her API token, "
        "and for her own with text/plain and form-encoded bodies.",
        "Each got a 4xx with a message, no server started, and the owner's stored options stayed.",
        requests=len(cases),
    )


def token_file_of(user):
    path = f"/home/{user}/.cylc/hub/jobs/cylc-hub-{user}.token"
    try:
        with open(path) as file:
            return file.read().strip()
    except FileNotFoundError:
        return None


# Words that each status's message contains, so that the job's log shows what to fix.
PORT_MESSAGE_WORDS = {400: "port", 403: "token", 409: "not waiting", 413: "longer than"}


def port_cases(tokens):
    """Return (case, headers, body, status) of every hostile port report.

    The invalid bodies carry the token of the attacker's queued server,
    which is waiting for a port, so that only the body check stops them.
    """
    owner = {"Authorization": f"token {tokens['owner_server']}"}
    waiting = {"Authorization": f"token {tokens['waiting_server']}"}
    json_type = {"Content-Type": "application/json"}
    return [
        ("no token", json_type, {"port": 9999}, 403),
        ("unknown token", {"Authorization": "token 0123456789abcdef"}, {"port": 9999}, 403),
        ("attacker's user token", {"Authorization": f"token {tokens['attacker_user']}"}, {"port": 9999}, 403),
        ("service token", {"Authorization": f"token {tokens['service']}"}, {"port": 9999}, 403),
        ("report after the server is up", owner, {"port": 9999}, 409),
        ("port 0", waiting, {"port": 0}, 400),
        ("port 65536", waiting, {"port": 65536}, 400),
        ("negative port", waiting, {"port": -1}, 400),
        ("port as text", waiting, {"port": "9999"}, 400),
        ("port as a float", waiting, {"port": 9999.5}, 400),
        ("port as a boolean", waiting, {"port": True}, 400),
        ("port null", waiting, {"port": None}, 400),
        ("extra ip", waiting, {"port": 9999, "ip": "10.0.0.1"}, 400),
        ("extra user", waiting, {"port": 9999, "user": OWNER}, 400),
        ("extra server", waiting, {"port": 9999, "server": {"url": "http://10.0.0.1/"}}, 400),
        ("no port", waiting, {}, 400),
        ("list body", waiting, [9999], 400),
        ("form body", {**waiting, "Content-Type": "application/x-www-form-urlencoded"}, b"port=9999", 400),
        ("1 MB body", waiting, b'{"port": 9999, "pad": "' + b"x" * 1_000_000 + b'"}', 413),
        ("10 MB body", waiting, b"x" * 10_000_000, 413),
        ("10 MB body without a token", json_type, b"x" * 10_000_000, 403),
    ]


def test_port_callback_abuse_rejected(port_hub, slurm, service_token, reliability):
    hub = port_hub
    url = f"{hub.url}/hub/api/cylc-batch/port"
    oscar = hub.login(OWNER)
    eve = hub.login(ATTACKER)
    response = hub.api(oscar, "POST", f"/users/{OWNER}/server")
    assert response.status_code in (201, 202), response.text
    before = hub.wait_ready(oscar, OWNER, timeout=120)

    # The node's one CPU runs oscar's job, so eve's job waits for its port in the queue.
    response = hub.api(eve, "POST", f"/users/{ATTACKER}/server")
    assert response.status_code == 202, response.text
    tokens = {
        "owner_server": server_token_of(OWNER),
        "attacker_user": hub.api(eve, "POST", f"/users/{ATTACKER}/tokens", json={}).json()["token"],
        "service": service_token,
        "waiting_server": wait_for(lambda: token_file_of(ATTACKER), 30, message="eve's token file"),
    }

    cases = port_cases(tokens)
    for case, headers, body, status in cases:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = requests.post(url, data=data, headers=headers, timeout=120)
        assert answer.status_code == status, (case, answer.status_code, answer.text[:500])
        assert PORT_MESSAGE_WORDS[status] in message_of(answer), (case, answer.text[:500])
        assert len(answer.content) < MAX_RESPONSE_BYTES, (case, len(answer.content))

    log = hub.log_text()
    for token in tokens.values():
        assert token not in log
    assert "reported port 9999" not in log
    after = hub.server_model(oscar, OWNER)
    assert after["ready"], after
    assert after["url"] == before["url"]
    assert hub.open(oscar, f"/user/{OWNER}/cylc/").status_code == 200
    waiting = hub.server_model(eve, ATTACKER)
    assert waiting["pending"] == "spawn", waiting
    assert requests.get(f"{hub.url}/hub/api/", timeout=30).ok

    hub.stop_server(eve, ATTACKER)
    hub.stop_server(oscar, OWNER)
    reliability.record(
        "hostile input",
        "Port reports were sent without a token, with a user's, a service's and other servers' "
        "tokens, with invalid ports, extra fields, 1 MB and 10 MB bodies, and after the server was up.",
        "Each got a 4xx with a message and no token in the log; the running server kept its "
        "address and answered, the queued one still waited, and the hub API answered.",
        requests=len(cases),
    )
