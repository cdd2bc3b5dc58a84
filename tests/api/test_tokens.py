"""``tonle token create|list|revoke`` through the command, and what the API makes of them."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import Seeded, bearer
from tonle.cli import app

pytestmark = pytest.mark.db


def _tonle(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"TONLE_DATABASE_URL": database_url})
    return result.exit_code, result.stdout


def test_create_list_revoke(database_url: str, client: TestClient, seeded: Seeded) -> None:
    code, out = _tonle(
        database_url, "token", "create", "--role", "factory", "--site", "alpha", "--name", "kim"
    )
    assert code == 0, out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tonle_") and len(secret) == 6 + 43
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT token_id, role, site, secret_sha256, api_tokens::text FROM api_tokens "
            "WHERE name = 'kim'"
        ).fetchone()
    assert row is not None
    token_id, role, site, stored, whole_row = row
    assert (role, site) == ("factory", "alpha")
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(whole_row)

    assert client.get("/sites/alpha", headers=bearer(secret)).status_code == 200

    code, listing = _tonle(database_url, "token", "list")
    assert code == 0 and "kim" in listing and secret not in listing

    code, out = _tonle(database_url, "token", "revoke", str(token_id))
    assert code == 0 and "revoked" in out
    response = client.get("/sites/alpha", headers=bearer(secret))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "factory"],
        ["--role", "staff", "--site", "alpha"],
        ["--role", "root"],
        ["--role", "factory", "--site", "Bad Site"],
    ],
)
def test_create_refuses_a_wrong_scope(database_url: str, args: list[str]) -> None:
    code, out = _tonle(database_url, "token", "create", *args)
    assert code == 1 and "tonle_" not in out


def test_revoke_unknown_id_fails(database_url: str) -> None:
    code, _ = _tonle(database_url, "token", "revoke", "424242")
    assert code == 1
