"""Capped exponential backoff with jitter, for reconnecting to the broker.

The jitter keeps a fleet of gateways that lost the same broker from all knocking on
its door in the same second when it comes back.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``min_s`` up to ``max_s``, each drawn from its upper half.

    Args:
        min_s: the ceiling of the first delay.
        max_s: the ceiling of every delay.
        rng: the random source; pass a seeded one for repeatable delays.
    """

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("backoff needs 0 < min_s <= max_s")
        self.min_s = min_s
        self.max_s = max_s
        self.attempts = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay_s(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        ceiling_s = min(self.max_s, self.min_s * 2.0 ** min(self.attempts, 62))
        self.attempts += 1
        return ceiling_s / 2 + self._rng.uniform(0.0, ceiling_s / 2)

    def reset(self) -> None:
        """Start from ``min_s`` again (after a successful connection)."""
        self.attempts = 0
