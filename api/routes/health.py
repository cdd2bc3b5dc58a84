"""Probes: the process is up (``/healthz``); its database and broker answer (``/readyz``)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter

from api.deps import Pool, SettingsDep
from api.models import CheckPublic, LivenessPublic, ReadinessPublic
from api.problems import ProblemError, problems

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> LivenessPublic:
    """The process answers (no database or broker involved)."""
    return LivenessPublic()


async def _database(pool: Pool) -> CheckPublic:
    try:
        async with pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, and says why
        return CheckPublic(ok=False, detail=f"database unreachable: {type(exc).__name__}")
    return CheckPublic(ok=True, detail="SELECT 1 answered")


async def _broker(host: str, port: int) -> CheckPublic:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CHECK_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return CheckPublic(ok=False, detail=f"broker {host}:{port} unreachable: {exc!r}")
    writer.close()
    await writer.wait_closed()
    return CheckPublic(ok=True, detail=f"TCP connect to {host}:{port} succeeded")


@router.get("/readyz", responses=problems(503))
async def readyz(pool: Pool, settings: SettingsDep) -> ReadinessPublic:
    """The database answers ``SELECT 1`` and the MQTT broker accepts a TCP connection."""
    broker = settings.broker
    database, mqtt = await asyncio.gather(_database(pool), _broker(broker.host, broker.port))
    if not (database.ok and mqtt.ok):
        failed = "; ".join(check.detail for check in (database, mqtt) if not check.ok)
        log.warning("not ready: %s", failed)
        raise ProblemError(503, failed, database=database.model_dump(), broker=mqtt.model_dump())
    return ReadinessPublic(status="ready", database=database, broker=mqtt)
