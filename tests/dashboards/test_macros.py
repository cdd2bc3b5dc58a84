"""Grafana's PostgreSQL macros and variable quoting, on closed-form examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboards.macros import (
    MacroError,
    QueryContext,
    Variable,
    expand,
    expand_macros,
    format_interval,
    interpolate,
    parse_interval,
    rfc3339,
)

FROM = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
TO = datetime(2026, 11, 17, 6, 30, 15, 250000, tzinfo=UTC)
CONTEXT = QueryContext(FROM, TO, timedelta(minutes=5))


def test_time_filter_is_between_rfc3339_instants() -> None:
    assert expand_macros("WHERE $__timeFilter(ts)", CONTEXT) == (
        "WHERE ts BETWEEN '2026-11-16T00:00:00Z' AND '2026-11-17T06:30:15.25Z'"
    )


def test_time_from_and_to_are_quoted_literals_in_utc() -> None:
    phnom_penh = timezone(timedelta(hours=7))
    other_zone = QueryContext(datetime(2026, 11, 16, 7, tzinfo=phnom_penh), TO, timedelta(1))
    assert expand_macros("$__timeFrom() .. $__timeTo()", other_zone) == (
        "'2026-11-16T00:00:00Z' .. '2026-11-17T06:30:15.25Z'"
    )


def test_time_group_is_floor_of_epoch_over_the_interval() -> None:
    assert expand_macros("$__timeGroup(ts, 5m)", CONTEXT) == (
        "floor(extract(epoch from ts)/300)*300"
    )
    assert expand_macros("$__timeGroupAlias(ts, '1h')", CONTEXT) == (
        'floor(extract(epoch from ts)/3600)*3600 AS "time"'
    )
    assert expand_macros("$__timeGroup(ts, 500ms)", CONTEXT) == (
        "floor(extract(epoch from ts)/0.5)*0.5"
    )


def test_time_group_uses_time_bucket_with_timescaledb() -> None:
    timescale = QueryContext(FROM, TO, timedelta(minutes=5), timescaledb=True)
    assert expand_macros("$__timeGroupAlias(ts, 5m)", timescale) == (
        "time_bucket('300.000s',ts) AS \"time\""
    )


def test_interval_variables_follow_grafana() -> None:
    assert interpolate("$__interval $__interval_ms ${__interval}", CONTEXT) == "5m 300000 5m"
    assert expand("$__timeGroupAlias(ts, $__interval)", CONTEXT) == (
        'floor(extract(epoch from ts)/300)*300 AS "time"'
    )


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=90), "90s"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=1), "1d"),
        (timedelta(milliseconds=200), "200ms"),
    ],
)
def test_interval_text_round_trips(interval: timedelta, text: str) -> None:
    assert format_interval(interval) == text
    assert parse_interval(text) == interval.total_seconds()


def test_unix_epoch_macros_are_whole_seconds() -> None:
    assert expand_macros("$__unixEpochFrom() $__unixEpochTo()", CONTEXT) == (
        f"{int(FROM.timestamp())} {int(TO.timestamp())}"
    )
    assert expand_macros("$__unixEpochFilter(t)", CONTEXT) == (
        f"t >= {int(FROM.timestamp())} AND t <= {int(TO.timestamp())}"
    )
    assert expand_macros("$__time(ts), $__timeEpoch(ts)", CONTEXT) == (
        'ts AS "time", extract(epoch from ts) as "time"'
    )


def test_single_value_variable_is_inserted_raw_with_quotes_doubled() -> None:
    context = QueryContext(FROM, TO, timedelta(minutes=1), {"site": Variable.single("o'hara")})
    assert interpolate("site = '$site' AND s = '${site}'", context) == (
        "site = 'o''hara' AND s = 'o''hara'"
    )


def test_multi_value_variable_is_a_list_of_literals() -> None:
    context = QueryContext(
        FROM, TO, timedelta(minutes=1), {"machine": Variable.many(["m1", "it's"]),
                                         "one": Variable.many(["x"])}
    )  # fmt: skip
    assert interpolate("machine IN ($machine) AND y IN ($one)", context) == (
        "machine IN ('m1','it''s') AND y IN ('x')"
    )


def test_longer_variable_names_are_not_cut_short() -> None:
    context = QueryContext(
        FROM, TO, timedelta(minutes=1),
        {"site": Variable.single("a"), "site_name": Variable.single("b")},
    )  # fmt: skip
    assert interpolate("$site_name $site", context) == "b a"


def test_unknown_names_and_bad_arguments_are_refused() -> None:
    with pytest.raises(MacroError, match="not defined"):
        interpolate("$nope", CONTEXT)
    with pytest.raises(MacroError, match="unknown macro"):
        expand_macros("$__nope(x)", CONTEXT)
    with pytest.raises(MacroError, match="needs 2"):
        expand_macros("$__timeGroup(ts)", CONTEXT)
    with pytest.raises(MacroError, match="interval"):
        expand_macros("$__timeGroup(ts, soon)", CONTEXT)
    with pytest.raises(MacroError, match="timezone-aware"):
        rfc3339(datetime(2026, 1, 1))
