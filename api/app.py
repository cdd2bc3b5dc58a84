"""The app factory: settings in, a FastAPI app with a pooled database out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.problems import install_problem_handlers
from api.routes import (
    alerts,
    completeness,
    edges,
    energy,
    health,
    machine_health,
    oee,
    overview,
    portfolio,
    registry,
    sites,
    telemetry,
)
from tonle.settings import Settings

POOL_MAX_SIZE = 10


def create_app(settings: Settings) -> FastAPI:
    """Build the API on ``settings``; the pool opens when the app starts and closes after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            kwargs={"autocommit": True},
            open=False,
            name="tonle-api",
        )
        # Not waiting: the app starts while the database is down, and /readyz says so.
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Tonle API",
        summary="Registry, telemetry and maintenance results of smart-factory pilots.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    for router in (health.router, sites.router, telemetry.router, alerts.router,
                   machine_health.router, energy.router, oee.router, edges.router,
                   portfolio.router, registry.router, completeness.router):  # fmt: skip
        app.include_router(router)
    app.include_router(overview.router)  # the page at / and its static files
    return app
