"""Readings of a site over a time range, raw or from the roll-ups (1 min, 1 h, 1 day)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api import queries
from api.deps import Conn, Pool, VisibleSite
from api.models import Bucket, TelemetryPublic
from api.problems import ProblemError, problems
from api.ranges import checked_span
from tonle.contract import ID_PATTERN

router = APIRouter(tags=["telemetry"], responses=problems(401, 403, 404, 422))

# A day bucket reads 24 hourly rows per sensor and day: five years stays a bounded query.
MAX_SPAN = {
    "raw": timedelta(days=31),
    "1m": timedelta(days=366),
    "1h": timedelta(days=366),
    "1d": timedelta(days=1830),
}
DEFAULT_SPAN = timedelta(days=1)
CSV_HEADER = ("ts", "line", "machine", "metric", "value")
CSV_CHUNK_ROWS = 1000  # rows per chunk sent: few writes, little memory


def checked_range(
    start: datetime | None, end: datetime | None, bucket: Bucket
) -> tuple[datetime, datetime]:
    """[start, end) in UTC with defaults filled in; a 422 problem if inverted or too long."""
    return checked_span(
        start,
        end,
        default=DEFAULT_SPAN,
        longest=MAX_SPAN[bucket],
        what=f"a {bucket} query",
        hint={"raw": "use bucket=1m, 1h or 1d, or ", "1d": ""}.get(bucket, "use bucket=1d, or "),
    )


async def _require_known(conn: Conn, site: str, column: str, value: str | None) -> None:
    if value is None:
        return
    known = await queries.known_values(conn, site, column)
    if value not in known:
        raise ProblemError(
            422,
            f"site {site!r} has no {column} {value!r}; known: {', '.join(known) or 'none yet'}",
        )


@router.get("/sites/{site}/telemetry")
async def get_telemetry(
    conn: Conn,
    site: VisibleSite,
    machine: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    metric: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = None,
    line: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    start: Annotated[datetime | None, Query(description="UTC unless an offset is given")] = None,
    end: Annotated[datetime | None, Query(description="exclusive; default now")] = None,
    bucket: Annotated[Bucket, Query(description="raw readings or roll-up means")] = "raw",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> TelemetryPublic:
    """Readings in [start, end) (default: the last day), oldest first, at most ``limit``.

    Raw ranges may span 31 days, 1m and 1h roll-ups 366 days, 1d 1830 days (five
    years). Days are UTC days built from the hourly roll-up (mean weighted by readings);
    a day cut by ``start`` or ``end`` counts only its hours inside the range. Unknown
    machines or metrics, and inverted or too long ranges, get a 422 problem naming what
    to change.
    """
    start_utc, end_utc = checked_range(start, end, bucket)
    await _require_known(conn, site, "machine", machine)
    await _require_known(conn, site, "metric", metric)
    points = await queries.telemetry(
        conn, site, bucket, start_utc, end_utc, line, machine, metric, limit
    )
    return TelemetryPublic(site=site, bucket=bucket, start=start_utc, end=end_utc, points=points)


async def _csv_chunks(
    pool: Pool,
    site: str,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    line: str | None,
    machine: str | None,
    metric: str | None,
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    rows = 0
    # Its own connection: the request's one may go back to the pool before the body ends.
    async with pool.connection() as conn:
        async for ts, line_, machine_, metric_, value in queries.telemetry_rows(
            conn, site, bucket, start, end, line, machine, metric
        ):
            writer.writerow((ts.astimezone(UTC).isoformat(), line_, machine_, metric_, value))
            rows += 1
            if rows % CSV_CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/sites/{site}/telemetry.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def get_telemetry_csv(
    conn: Conn,
    pool: Pool,
    site: VisibleSite,
    machine: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    metric: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = None,
    line: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    start: Annotated[datetime | None, Query(description="UTC unless an offset is given")] = None,
    end: Annotated[datetime | None, Query(description="exclusive; default now")] = None,
    bucket: Annotated[Bucket, Query(description="raw readings or roll-up means")] = "raw",
) -> StreamingResponse:
    """The same readings as ``/telemetry`` as CSV (``ts,line,machine,metric,value``), streamed.

    No row limit: rows go out as the database sends them (a server-side stream), so long
    ranges never sit in memory. Ranges are limited as for ``/telemetry``.
    """
    start_utc, end_utc = checked_range(start, end, bucket)
    await _require_known(conn, site, "machine", machine)
    await _require_known(conn, site, "metric", metric)
    name = f"{site}-{bucket}-{start_utc:%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        _csv_chunks(pool, site, bucket, start_utc, end_utc, line, machine, metric),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
