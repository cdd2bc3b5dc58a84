"""Time ranges of queries: UTC, defaults filled in, inverted or too long ones refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.problems import ProblemError


def as_utc(value: datetime) -> datetime:
    """Times without an offset are read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def checked_span(
    start: datetime | None,
    end: datetime | None,
    *,
    default: timedelta,
    longest: timedelta,
    what: str,
    hint: str = "",
) -> tuple[datetime, datetime]:
    """[start, end) in UTC (end defaults to now, start to ``default`` before it).

    Raises a 422 problem if the range is inverted or longer than ``longest``; the
    message names ``what`` is limited and, with ``hint``, how to ask instead.
    """
    try:
        end_utc = as_utc(end) if end is not None else datetime.now(UTC)
        start_utc = as_utc(start) if start is not None else end_utc - default
    except OverflowError as exc:
        raise ProblemError(422, f"{exc}; ask for times between the years 1 and 9999") from exc
    if start_utc >= end_utc:
        raise ProblemError(
            422,
            f"start ({start_utc.isoformat()}) must be before end ({end_utc.isoformat()}); "
            "swap them",
        )
    if end_utc - start_utc > longest:
        raise ProblemError(
            422, f"{what} covers at most {longest.days} days; {hint}ask for a shorter range"
        )
    return start_utc, end_utc
