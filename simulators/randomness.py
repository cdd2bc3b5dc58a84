"""Seeded random generators: reproducible simulation noise, never anything secret."""

from __future__ import annotations

import random


def seeded(key: str) -> random.Random:
    """A generator whose draws are fixed by ``key`` (strings seed the same on every run)."""
    return random.Random(key)  # noqa: S311 - simulation noise must be reproducible, not secret
