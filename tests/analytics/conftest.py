"""A real database filled by the simulator, for the analytics job tests."""

from __future__ import annotations

import threading
from datetime import datetime

from ingest.store import Batch, Store
from simulators.run import build_source
from simulators.truth import Truth


def fill_site(database_url: str, layout: str, seed: int, start: datetime, days: float) -> Truth:
    """Backfill ``days`` of a simulated site straight into the database; return the truth.

    The data path (edge, broker, ingester) has its own tests; here the simulator's
    samples are written with the ingester's store, in batches, as it would write them.
    """
    source, truth = build_source(
        layout=layout, seed=seed, start=start, days=days, realtime=False, truth_dir=None
    )
    store = Store(database_url)
    store.connect()
    rows: list[tuple[datetime, int, float]] = []
    for sample in source.samples(threading.Event()):
        key = (source.site, sample.line, sample.machine, sample.metric)
        sensor = store.known(key)
        if sensor is None:
            store.register([(key, sample.unit)], create=True)
            sensor = store.known(key)
            assert sensor is not None
        rows.append((sample.ts, sensor.id, sample.value))
        if len(rows) >= 50_000:
            store.write(Batch(rows=rows))
            rows = []
    store.write(Batch(rows=rows))
    store.close()
    return truth
