"""The port a job reports: exactly {"port": N}, with N an integer from 1 to 65535."""

import json

import pytest

from cylc_hub.spawners.batch_api import parse_port


@pytest.mark.parametrize("port", [1, 8888, 65535])
def test_port_accepted(port):
    assert parse_port(json.dumps({"port": port}).encode()) == port


@pytest.mark.parametrize(
    "body, rule",
    [
        (b'{"port": "8888"}', "must be an integer"),
        (b'{"port": 8888.0}', "must be an integer"),
        (b'{"port": true}', "must be an integer"),
        (b'{"port": null}', "must be an integer"),
        (b'{"port": 0}', "outside 1-65535"),
        (b'{"port": 65536}', "outside 1-65535"),
        (b'{"port": 8888, "ip": "10.0.0.9"}', "exactly"),
        (b'{"port": 8888, "server": {"ip": "x"}}', "exactly"),
        (b"{}", "exactly"),
        (b"[8888]", "exactly"),
        (b"8888", "exactly"),
        (b"port=8888", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"port": ' + b"9" * 2000 + b"}", "longer than"),
    ],
)
def test_port_rejected(body, rule):
    with pytest.raises(ValueError, match=rule):
        parse_port(body)
