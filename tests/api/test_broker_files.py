"""Mosquitto's password hash and ACL file, rendered without a broker or a database."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from api.broker_files import (
    EdgeLogin,
    acl_file,
    check_mosquitto_hash,
    edge_username,
    mosquitto_hash,
    passwd_file,
)

FIXED_SALT = bytes(range(12))


def test_hash_has_mosquitto_shape_and_checks() -> None:
    stored = mosquitto_hash("s3cret", FIXED_SALT)
    assert stored.startswith("$7$101$AAECAwQFBgcICQoL$")
    assert len(stored.split("$")[4]) == 88  # 64 bytes, base64
    assert check_mosquitto_hash("s3cret", stored)
    assert not check_mosquitto_hash("S3cret", stored)
    assert mosquitto_hash("s3cret") != mosquitto_hash("s3cret")  # a fresh salt each time


def test_hash_matches_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("this test needs mosquitto_passwd: apt-get install mosquitto")
    passwd = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(passwd), "edge", "pa:ss wörd"], check=True)
    user, stored = passwd.read_text().strip().split(":", 1)
    assert user == "edge" and stored.startswith("$7$101$")
    salt_b64 = stored.split("$")[3]

    assert mosquitto_hash("pa:ss wörd", base64.b64decode(salt_b64)) == stored
    assert check_mosquitto_hash("pa:ss wörd", stored)
    assert not check_mosquitto_hash("other", stored)


def test_passwd_file_is_sorted_user_lines() -> None:
    assert passwd_file([("b.e", "$7$h2"), ("a.e", "$7$h1")]) == "a.e:$7$h1\nb.e:$7$h2\n"


def test_acl_lets_each_edge_write_its_site_and_status_only() -> None:
    edges = [EdgeLogin("beta", "gw", edge_username("beta", "gw"), "$7$x"),
             EdgeLogin("alpha", "gw-1", edge_username("alpha", "gw-1"), "$7$y")]  # fmt: skip
    text = acl_file(edges, "ingest")
    blocks = text.split("\n\n")
    assert blocks[0].startswith("# Generated from the Tonle registry")
    assert blocks[1:] == [
        "user ingest\ntopic read tonle/v1/#\ntopic read $share/+/tonle/v1/#",
        "user alpha.gw-1\ntopic write tonle/v1/alpha/+/+/telemetry\n"
        "topic write tonle/v1/alpha/_edge/gw-1/status",
        "user beta.gw\ntopic write tonle/v1/beta/+/+/telemetry\n"
        "topic write tonle/v1/beta/_edge/gw/status\n",
    ]


def test_acl_without_an_ingester_has_edges_only() -> None:
    text = acl_file([], None)
    assert "user" not in text
