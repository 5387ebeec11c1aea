"""Faults of the cylc-access service through the real hub: a killed service, a policy file
written in place, and a grants database on a full file system.

The hub runs with no slot groups, so every viewer of bob's server gets a
share of its own. A policy change then makes the service create or revoke
one share per viewer, a reconcile long enough to be killed in the middle.
"""

import errno
import os
import sqlite3
import subprocess
import time

import pytest

from accessharness import (
    SERVICE,
    create_hub_user,
    create_token,
    kill_service,
    start_access_hub,
    start_server,
    token_client,
    user_shares,
    wait_service_restart,
    xsrf_of,
)
from hubharness import stop_hub, wait_for

pytestmark = pytest.mark.hub

SWEEP_SECONDS = 3
VIEWERS = [f"v-{number:03d}" for number in range(150)]

# bob may give carol and dave up to READ and CONTROL by grants. The v-
# viewers get READ from a rule that the tests add and take away.
BASE_POLICY = """
[groups]
ops = ["carol"]

[[rules]]
owners = ["bob"]
viewers = ["group:ops", "dave"]
default = []
limit = ["READ", "CONTROL"]
"""


def viewers_rule(glob):
    return f'\n[[rules]]\nowners = ["bob"]\nviewers = ["{glob}"]\ndefault = ["READ"]\n'


GRANTS = {"carol": ["READ", "CONTROL"], "dave": ["READ"]}


def replace_policy(hub, text):
    """Replace the policy file whole, with a rename, as a careful site does."""
    temporary = hub.policy_path.with_suffix(".new")
    temporary.write_text(text)
    os.replace(temporary, hub.policy_path)


@pytest.fixture(scope="module")
def faults_hub(password, tmp_path_factory):
    hub = start_access_hub(
        password,
        tmp_path_factory.mktemp("faults-hub"),
        BASE_POLICY,
        sweep_seconds=SWEEP_SECONDS,
        extra_env={"CYLC_HUB_ACCESS_SLOTS": "0"},
    )
    try:
        alice = hub.login("alice")
        hub.admin_token = create_token(hub, alice, "alice", "faults tests")
        response = create_hub_user(hub, hub.admin_token, "erin")
        assert response.status_code == 201, response.text
        for name in VIEWERS:
            response = create_hub_user(hub, hub.admin_token, name)
            assert response.status_code == 201, response.text
        bob = hub.login("bob")
        start_server(hub, bob, "bob")
        hub.bob_token = create_token(hub, bob, "bob", "faults tests")
        yield hub
    finally:
        stop_hub(hub)


def log_count(hub, text):
    return hub.log_text().count(text)


def grants_of_bob(hub):
    response = token_client(hub.bob_token).get(f"{hub.url}{SERVICE}/api/grants/bob", timeout=60)
    assert response.status_code == 200, response.text
    return {grant["viewer"]: grant["permissions"] for grant in response.json()["grants"]}


def decisions(hub, viewers):
    """Return ``{viewer: permissions}`` on bob's server from the service's API."""
    client = token_client(hub.bob_token)
    result = {}
    for viewer in viewers:
        response = client.get(
            f"{hub.url}{SERVICE}/api/permissions/bob", params={"user": viewer}, timeout=60
        )
        assert response.status_code == 200, response.text
        result[viewer] = response.json()["permissions"]
    return result


def wait_shares(hub, expected, timeout, message):
    wait_for(
        lambda: user_shares(hub, hub.admin_token, "bob") == expected,
        timeout,
        interval=0.5,
        message=message,
    )


def kill_mid_reconcile(hub, progress_line):
    """SIGKILL cylc-access once it has logged ``progress_line`` 10 times, and wait for its restart.

    Returns the number of those lines at the kill, bob's shares right after
    it, and the time of the kill (``time.monotonic``).
    """
    before = log_count(hub, progress_line)
    wait_for(
        lambda: log_count(hub, progress_line) - before >= 10,
        60,
        interval=0.02,
        message=f"10 lines of {progress_line!r}",
    )
    starts = kill_service(hub)
    killed_at = time.monotonic()
    progress = log_count(hub, progress_line) - before
    shares = user_shares(hub, hub.admin_token, "bob")
    wait_service_restart(hub, starts)
    return progress, shares, killed_at


def test_sigkill_mid_reconcile_converges(faults_hub, reliability):
    hub = faults_hub
    client = token_client(hub.bob_token)
    for viewer, permissions in GRANTS.items():
        response = client.post(
            f"{hub.url}{SERVICE}/api/grants/bob",
            json={"viewer": viewer, "permissions": permissions},
            timeout=60,
        )
        assert response.status_code == 201, response.text
    wait_shares(hub, set(GRANTS), 30, "the grants' shares")

    replace_policy(hub, BASE_POLICY + viewers_rule("v-*"))
    granted_before_kill, shares, killed_at = kill_mid_reconcile(
        hub, "Share granted: bob's server to v-"
    )
    assert len(shares) > len(GRANTS), "the kill came before any v- share"
    assert len(shares) < len(VIEWERS) + len(GRANTS), "the reconcile had finished"
    wait_shares(hub, set(VIEWERS) | set(GRANTS), 90, "the shares of every v- viewer after the restart")
    grant_recovery_seconds = time.monotonic() - killed_at

    replace_policy(hub, BASE_POLICY)
    revoked_before_kill, shares, killed_at = kill_mid_reconcile(
        hub, "Share revoked: bob's server from v-"
    )
    assert len(shares) < len(VIEWERS) + len(GRANTS), "the kill came before any revoke"
    assert len(shares) > len(GRANTS), "the reconcile had finished"
    wait_shares(hub, set(GRANTS), 90, "the v- shares revoked after the restart")
    revoke_recovery_seconds = time.monotonic() - killed_at

    assert grants_of_bob(hub) == GRANTS
    after = decisions(hub, ["carol", "dave", "v-000"])
    assert "read" in after["carol"]
    assert "pause" in after["carol"]
    assert after["dave"] == ["read"]
    assert after["v-000"] == []
    assert hub.open(hub.login("carol"), "/user/bob/cylc/").status_code == 200
    assert hub.open(hub.login("dave"), "/user/bob/cylc/").status_code == 200
    reliability.record(
        "faults",
        f"Killed cylc-access with SIGKILL while a policy change made it share bob's server with "
        f"{len(VIEWERS)} viewers one by one, and again while the next change revoked them; the hub "
        "restarted it each time.",
        "Each time the restarted service made the hub's shares equal to the policy, and bob's "
        "grants made before the kills were all still stored and let carol and dave in.",
        viewers=len(VIEWERS),
        shares_granted_before_kill=granted_before_kill,
        shares_revoked_before_kill=revoked_before_kill,
        kill_to_shares_equal_after_grants_s=round(grant_recovery_seconds, 1),
        kill_to_shares_equal_after_revokes_s=round(revoke_recovery_seconds, 1),
    )


def write_in_place(path, text):
    """Write ``text`` into the existing file, as an editor saving in place does."""
    with open(path, "w") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())


def test_half_written_policy_keeps_last_good(faults_hub, reliability):
    hub = faults_hub
    replace_policy(hub, BASE_POLICY + viewers_rule("v-00*"))
    first = {f"v-00{digit}" for digit in range(10)} | set(GRANTS)
    wait_shares(hub, first, 30, "the shares of v-000 to v-009")
    probe = ["carol", "dave", "erin", "v-001", "v-011", "v-100"]
    before = decisions(hub, probe)

    new_text = BASE_POLICY + viewers_rule("v-01*")
    cut = new_text.rindex('"v-01') + 4
    rejections = log_count(hub, "rejected, keeping the last good policy")
    write_in_place(hub.policy_path, "")
    wait_for(
        lambda: log_count(hub, "rejected, keeping the last good policy") > rejections,
        30, interval=0.5, message="the empty policy file rejected",
    )
    assert f"{hub.policy_path}:1: the policy file is empty" in hub.log_text()
    write_in_place(hub.policy_path, new_text[:cut])
    wait_for(
        lambda: log_count(hub, "rejected, keeping the last good policy") > rejections + 1,
        30, interval=0.5, message="the half-written policy file rejected",
    )
    line = new_text[:cut].count("\n") + 1
    assert f"{hub.policy_path}:{line}: invalid TOML" in hub.log_text()

    time.sleep(SWEEP_SECONDS + 1)
    assert decisions(hub, probe) == before
    assert user_shares(hub, hub.admin_token, "bob") == first

    loads = log_count(hub, "Policy file")
    write_in_place(hub.policy_path, new_text)
    started = time.monotonic()
    second = {f"v-01{digit}" for digit in range(10)} | set(GRANTS)
    wait_shares(hub, second, SWEEP_SECONDS + 10, "the shares of v-010 to v-019")
    follow_seconds = time.monotonic() - started
    assert log_count(hub, "Policy file") > loads
    after = decisions(hub, probe)
    assert after["v-011"] == ["read"]
    assert after["v-001"] == []
    assert after["carol"] == before["carol"]
    reliability.record(
        "faults",
        "Emptied the policy file in place, then wrote half of a new policy into it, cut inside "
        "a rule, then the whole new policy, in place each time.",
        "The empty and the half-written file were rejected with FILE:LINE in the log while "
        "decisions and shares stayed those of the last good policy; the whole file was then "
        "applied and the hub's shares followed it.",
        shares_follow_s=round(follow_seconds, 1),
    )


# ----------------------------------------------------------------------------------------
# A grants database on a full file system.

FULL_POLICY = """
[[rules]]
owners = ["bob"]
viewers = ["carol", "dave"]
default = []
limit = ["READ", "CONTROL"]
"""


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """A 1 MiB tmpfs mounted for this module; skips when this machine cannot mount one."""
    mount_point = tmp_path_factory.mktemp("grants-disk")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): no full-disk test")
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def full_disk_hub(password, tmp_path_factory, small_disk):
    database = small_disk / "grants.sqlite"
    hub = start_access_hub(
        password,
        tmp_path_factory.mktemp("full-disk-hub"),
        FULL_POLICY,
        grants_db_url=f"sqlite:///{database}",
    )
    hub.database = database
    try:
        yield hub
    finally:
        stop_hub(hub)


def fill_disk(directory):
    """Fill the file system of ``directory`` with one file; return its path."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with open(filler, "wb") as stream:
        try:
            while True:
                stream.write(block)
                stream.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    try:
        # Small writes fill the last free blocks that a 64 KiB write could not.
        with open(filler, "ab", buffering=0) as stream:
            while True:
                stream.write(b"\0" * 512)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    return filler


def stored_rows(database):
    """Return the integrity check result and the (owner, viewer) rows of the grants database."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = set(connection.execute("SELECT owner, viewer FROM cylc_access_grants"))
    return check, rows


def test_full_disk_rejects_grant_cleanly(full_disk_hub, reliability):
    hub = full_disk_hub
    bob = hub.login("bob")
    page = hub.open(bob, f"{SERVICE}/grants")
    headers = {"X-XSRFToken": xsrf_of(page)}
    api = f"{hub.url}{SERVICE}/api/grants/bob"
    created = bob.post(api, json={"viewer": "carol", "permissions": ["READ"]}, headers=headers, timeout=60)
    assert created.status_code == 201, created.text

    filler = fill_disk(hub.database.parent)
    try:
        refused = bob.post(api, json={"viewer": "dave", "permissions": ["READ"]}, headers=headers, timeout=60)
        assert refused.status_code == 503, refused.text
        assert "was not stored, because the grants database cannot be written" in refused.json()["message"]

        form = {"_xsrf": headers["X-XSRFToken"], "action": "grant", "viewer": "dave", "permissions": "READ"}
        refused_page = bob.post(f"{hub.url}{SERVICE}/grants", data=form, timeout=60)
        assert refused_page.status_code == 503
        assert refused_page.headers["Content-Type"].startswith("text/html")
        assert "was not stored, because the grants database cannot be written" in refused_page.text

        not_revoked = bob.delete(f"{api}/carol", headers=headers, timeout=60)
        assert not_revoked.status_code == 503, not_revoked.text
        assert "It is still in force" in not_revoked.json()["message"]

        listed = bob.get(api, timeout=60)
        assert listed.status_code == 200
        assert [grant["viewer"] for grant in listed.json()["grants"]] == ["carol"]
        assert bob.get(f"{hub.url}{SERVICE}/api/viewable", timeout=60).status_code == 200
        assert "Grant not stored: owner=bob viewer=dave" in hub.log_text()
        assert "database or disk is full" in hub.log_text()
        assert stored_rows(hub.database) == ("ok", {("bob", "carol")})
    finally:
        filler.unlink()

    created = bob.post(api, json={"viewer": "dave", "permissions": ["READ"]}, headers=headers, timeout=60)
    assert created.status_code == 201, created.text
    assert bob.delete(f"{api}/carol", headers=headers, timeout=60).status_code == 200
    assert stored_rows(hub.database) == ("ok", {("bob", "dave")})
    reliability.record(
        "faults",
        "Put the grants database on a 1 MiB tmpfs, filled it, and granted and revoked through "
        "the API and the grants page, then freed the space and tried again.",
        "With the disk full each change got 503 with a message saying nothing changed, the "
        "database passed SQLite's integrity check with the old rows, and the service went on "
        "serving; with room again grants and revokes worked.",
        tmpfs_size_mib=1,
    )
