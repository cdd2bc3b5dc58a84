"""Reconnect delays: doubling, capped, jittered, reset after success."""

from __future__ import annotations

import random

import pytest

from edge.backoff import Backoff


def test_delays_double_up_to_the_cap_each_in_its_upper_half() -> None:
    backoff = Backoff(1.0, 30.0, rng=random.Random(7))
    delays = [backoff.next_delay_s() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays), "jitter makes every delay different"
    backoff.reset()
    assert 0.5 <= backoff.next_delay_s() <= 1.0


def test_two_gateways_do_not_retry_in_step() -> None:
    first = Backoff(1.0, 60.0, rng=random.Random(1))
    second = Backoff(1.0, 60.0, rng=random.Random(2))
    assert [first.next_delay_s() for _ in range(5)] != [second.next_delay_s() for _ in range(5)]


def test_many_failures_do_not_overflow() -> None:
    backoff = Backoff(1.0, 60.0, rng=random.Random(3))
    for _ in range(2000):
        assert backoff.next_delay_s() <= 60.0


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_refused(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="0 < min_s <= max_s"):
        Backoff(low, high)
